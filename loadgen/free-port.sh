# Sourced by the benchmark scripts: free_port prints a loopback port nothing listens on, below the
# ephemeral range (32768+), so the load generator's own outgoing sockets never take it.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 10000))
        if ! ss -Htln "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
}
