#!/usr/bin/env bash
# C100k on one machine whose descriptor limit is 20,000 per process (issue 14): INSTANCES service
# processes on one private redis-server, each with its own load generator of CLIENTS clients, all
# run at once. Each load generator names its own topics (`football/loadgen-<run id>/...`), so the
# instances share Redis and nothing else, as independent Scoreline instances do in production.
#
#   cargo build --release -p scoreline-loadgen -p scoreline-service
#   loadgen/c100k.sh s3                                   # 100,002 idle fans: RSS per connection
#   loadgen/c100k.sh s4                                   # 100,002 connect + subscribe at once
#   SERVER=raw loadgen/c100k.sh s4                        # the same storm against the yardstick
#   loadgen/c100k.sh custom --topics 1 --rate 5 --secs 10 # one match per instance, 5 events/s
#   ONE_MATCH=1 loadgen/c100k.sh custom --topics 1 --rate 5 --secs 10
#                                       # ONE match followed by all 100,002 fans, 5 events/s
#
# SERVER=raw runs the yardstick (loadgen/src/bin/raw-fanout.rs, as bench-scenario.sh does) in
# place of every service instance: the same runs against the least a fan-out server can do on
# this machine. It takes no flags, so SERVICE_ARGS and WORKERS do not apply to it (it has no
# request or idle timeout to raise, and two runtime workers).
#
# Defaults: INSTANCES=6, CLIENTS=16667 (6 x 16,667 = 100,002). Every loadgen connects to its own
# instance from 127.0.0.1: a local port only has to be unique per destination, so each pair has
# the whole ephemeral range (32768-60999) to itself and no extra source address is needed. The
# load generator binds each client to a port of its own (loadgen/src/source_ports.rs): left to
# the kernel, 16,667 connections to one destination made each connect() walk half the range.
# Each instance runs one worker (WORKERS=1 unless set; WORKERS= for the service's default of one
# per core): six instances of two workers are twelve busy threads on two cores, and one worker
# each took the storm from 12.7-14.6 s to 10.8-12.1 s and its connect CPU down a fifth
# (docs/benchmarks.md, issue 14, session 9). WORKERS=2 is the setup of earlier sessions' figures.
# ONE_MATCH=1: every load generator gets the same --run-id (so the same topics) and
# --shared-by INSTANCES; the first publishes once every process is subscribed, the others
# --follow and measure latency from each event's ts_ms (same machine, same wall clock, up to
# 1 ms high). Without it each load generator names and publishes its own topics, as before.
# IN_PLAY=N: before the storm, each run's topics get N events (a separate load generator run per
# run id, one client, all N published within a second), and the storm's load generators go on
# from seq N+1 (`--first-seq`): fans reconnecting to matches in play, each `subscribe` answered
# with the match so far (N goals in its timeline), as after a deploy during a final.
# Prints each load generator's one-line summary and a total, with latency percentiles over
# all processes when they report histograms (shared runs); each run's JSON report and logs go
# to $OUT (default $TMPDIR/scoreline-c100k-<scenario>/). Stops everything it started, by PID.
set -euo pipefail

scenario=${1:?usage: $0 <s3|s4|custom> [loadgen flags...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN_DIR:-$root/target/release}
instances=${INSTANCES:-6}
clients=${CLIENTS:-16667}
workers=${WORKERS-1}
out=${OUT:-${TMPDIR:-/tmp}/scoreline-c100k-$scenario}
mkdir -p "$out"
# A run's summary reads every report in $out: an earlier run's must not be counted in it.
rm -f "$out"/loadgen-*.out "$out"/loadgen-*.log "$out"/service-*.log "$out"/reports.jsonl
ulimit -n "$(ulimit -Hn)"

source "$root/loadgen/free-port.sh"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --maxclients 1000 >"$out/redis.log" 2>&1 &
redis_pid=$!
service_pids=()
service_ports=()
for n in $(seq "$instances"); do
    port=$(free_port)
    if [[ ${SERVER:-scoreline} == raw ]]; then
        "$bin/raw-fanout" "127.0.0.1:$port" "redis://127.0.0.1:$redis_port/" \
            >"$out/service-$n.log" 2>&1 &
    else
        RUST_LOG=${RUST_LOG:-warn} "$bin/scoreline-service" --listen "127.0.0.1:$port" \
            --redis-url "redis://127.0.0.1:$redis_port/" --max-connections 20000 \
            ${workers:+--workers "$workers"} ${SERVICE_ARGS:-} >"$out/service-$n.log" 2>&1 &
    fi
    service_pids+=("$!")
    service_ports+=("$port")
done
# Services first in the list, so cleanup stops them before Redis.
pids=("${service_pids[@]}" "$redis_pid")
# The yardstick has no /readyz: it is ready once it listens, which it does only after its
# PSUBSCRIBE (raw-fanout.rs), so no event published after that can miss it.
ready() {
    if [[ ${SERVER:-scoreline} == raw ]]; then
        ss -Htln "sport = :$1" | grep -q .
    else
        curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1
    fi
}
for port in "${service_ports[@]}"; do
    for _ in $(seq 100); do
        ready "$port" && break
        sleep 0.1
    done
    ready "$port"
done
free -m | awk '/Mem:/ {print "machine memory used before: " $3 " MB"}'

run_id=$(date +%s%3N)
# Each load generator its own run id, hence its own topics: left to the load generators
# (milliseconds at their start), two of them started 10 ms apart once took the same one and
# both published on it. With ONE_MATCH, one run id for all.
run_id_of() {
    if [[ -n ${ONE_MATCH:-} ]]; then echo "$run_id"; else echo "$run_id-$1"; fi
}
first_seq=()
if [[ -n ${IN_PLAY:-} ]]; then
    # The storm's topics: --topics if given, else the preset's.
    topics=10
    [[ $scenario == s3 || $scenario == s4 ]] && topics=100
    previous=
    for arg in "$@"; do
        [[ $previous == --topics ]] && topics=$arg
        previous=$arg
    done
    preludes=()
    for n in $(seq "$instances"); do
        [[ -n ${ONE_MATCH:-} && $n -gt 1 ]] && break
        "$bin/loadgen" --scenario custom --clients 1 --topics "$topics" \
            --rate $((topics * IN_PLAY)) --secs 1 --run-id "$(run_id_of "$n")" \
            --url "ws://127.0.0.1:${service_ports[$((n - 1))]}/ws" \
            --redis-url "redis://127.0.0.1:$redis_port/" \
            >"$out/prelude-$n.out" 2>"$out/prelude-$n.log" &
        preludes+=("$!")
    done
    for pid in "${preludes[@]}"; do
        wait "$pid"
    done
    # Redis has written every prelude event to every instance; a second for them to apply it.
    sleep 1
    first_seq=(--first-seq $((IN_PLAY + 1)))
    echo "in play: $IN_PLAY events on each of $topics topics per run before the storm"
fi

loadgens=()
start=$(date +%s.%N)
for n in $(seq "$instances"); do
    share=(--run-id "$(run_id_of "$n")" "${first_seq[@]}")
    if [[ -n ${ONE_MATCH:-} ]]; then
        share+=(--shared-by "$instances")
        [[ $n -gt 1 ]] && share+=(--follow)
    fi
    "$bin/loadgen" --scenario "$scenario" --clients "$clients" "${share[@]}" \
        --url "ws://127.0.0.1:${service_ports[$((n - 1))]}/ws" \
        --redis-url "redis://127.0.0.1:$redis_port/" --server-pid "${service_pids[$((n - 1))]}" \
        "$@" >"$out/loadgen-$n.out" 2>"$out/loadgen-$n.log" &
    loadgens+=("$!")
done
status=0
for pid in "${loadgens[@]}"; do
    wait "$pid" || status=$?
done
end=$(date +%s.%N)
# Redis publishes every event once per server instance, and the load generators meet in it.
awk -v hz="$(getconf CLK_TCK)" '{printf "redis-server CPU seconds over the run: %.2f\n", ($14 + $15) / hz}' \
    "/proc/$redis_pid/stat" || true
free -m | awk '/Mem:/ {print "machine memory used after: " $3 " MB"}'
grep -h -v '^{' "$out"/loadgen-*.out || true
grep -h '^{"scenario"' "$out"/loadgen-*.out >"$out/reports.jsonl" || true
python3 - "$out/reports.jsonl" "$start" "$end" <<'PY'
import json, sys
reports = [json.loads(line) for line in open(sys.argv[1])]
wall = float(sys.argv[3]) - float(sys.argv[2])
subscribed = sum(r["subscribed"] for r in reports)
planned = sum(r["plan"]["readers"] for r in reports)
lost = sum(r["lost"] for r in reports)
servers = [r.get("server") or {} for r in reports]
rss = [s["rss_per_connection_bytes"] for s in servers if s.get("rss_per_connection_bytes")]
print(f"instances {len(reports)}: {subscribed}/{planned} subscribed, lost {lost}, "
      f"slowest instance connect+subscribe {max(r['connect_all_secs'] for r in reports):.2f} s, "
      f"load generators' wall time {wall:.1f} s")
if rss:
    print(f"RSS per connection by instance: {', '.join(f'{x:.0f}' for x in rss)} B "
          f"(mean {sum(rss) / len(rss):.0f} B)")
# Who used the two cores: at this size the load generators compete with the servers for them.
loadgen_cpu = [r["loadgen_cpu_secs"] for r in reports]
server_cpu = [s["cpu_secs_connecting"] + s["cpu_secs_publishing"] for s in servers if s]
print(f"CPU seconds by load generator: {', '.join(f'{x:.1f}' for x in loadgen_cpu)} "
      f"(sum {sum(loadgen_cpu):.1f})")
if server_cpu:
    print(f"CPU seconds by server: {', '.join(f'{x:.1f}' for x in server_cpu)} "
          f"(sum {sum(server_cpu):.1f}); both over the wall time: "
          f"{(sum(loadgen_cpu) + sum(server_cpu)) / wall:.2f} cores")
p99 = [r["latency"]["p99_ms"] for r in reports if r["latency"].get("p99_ms")]
if p99:
    print(f"p99 by instance: {', '.join(f'{x:.1f}' for x in p99)} ms (max {max(p99):.1f} ms)")
# Shared runs carry their histograms: add the buckets up, then take percentiles of the whole.
buckets = {}
for r in reports:
    for micros, count in r.get("latency_buckets") or []:
        buckets[micros] = buckets.get(micros, 0) + count
if buckets:
    total = sum(buckets.values())
    def at(q):
        rank, seen = q * total, 0
        for micros in sorted(buckets):
            seen += buckets[micros]
            if seen >= rank:
                return micros / 1000
    delivered = sum(r["delivered"] for r in reports)
    expected = sum(r["expected"] for r in reports)
    print(f"all processes: {delivered}/{expected} delivered, lost {lost}, {total} latencies: "
          f"p50 {at(0.5):.1f} p99 {at(0.99):.1f} p99.9 {at(0.999):.1f} max {max(buckets) / 1000:.1f} ms")
PY
exit "$status"
