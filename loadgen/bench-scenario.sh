#!/usr/bin/env bash
# Runs one load scenario against a fresh release build of the service and a private
# redis-server, both on free loopback ports, then stops both by PID. Nothing else is touched.
#
#   cargo build --release -p scoreline-loadgen -p scoreline-service
#   loadgen/bench-scenario.sh s1                 # a preset from issue 6
#   loadgen/bench-scenario.sh custom --clients 200 --topics 10 --rate 50 --secs 2
#
# The service runs with its default worker count and room for 20,000 connections; its log
# goes to $TMPDIR/scoreline-bench-<port>.log. Extra flags go to the load generator;
# WORKERS=1 changes the service's worker count, SERVICE_ARGS="--flag value" adds flags to it.
#
# Profiling: PERF_DATA=/tmp/s2.perf PERF_DELAY_SECS=6 PERF_SECS=8 loadgen/bench-scenario.sh s2
# samples the service with `perf record` (flat, 999 Hz) for PERF_SECS seconds, starting
# PERF_DELAY_SECS seconds after the load generator starts (after connecting, during publishing).
#
# Instruction counts: CALLGRIND_OUT=/tmp/s.callgrind runs the service (or the yardstick) under
# `valgrind --tool=callgrind` (about 50 times slower, so use small custom runs); the total
# instruction count (`callgrind_annotate FILE | head`) does not depend on what else the machine
# is doing, unlike CPU seconds. Differences between two runs that differ only in clients or
# events give instructions per connection or per delivery.
set -euo pipefail

scenario=${1:?usage: $0 <s1|s2|s3|s4|s5|custom> [loadgen flags...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
# BIN_DIR lets a series of runs use copies of the binaries that a concurrent build cannot replace.
bin=${BIN_DIR:-$root/target/release}
# 10,000 clients need 10,000 descriptors on each side: take the hard limit (20,000 in the
# benchmark container, where it cannot be raised further).
ulimit -n "$(ulimit -Hn)"

source "$root/loadgen/free-port.sh"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    >/dev/null 2>&1 &
redis_pid=$!
service_port=$(free_port)
log=${TMPDIR:-/tmp}/scoreline-bench-$service_port.log
# SERVER=raw runs the yardstick instead of Scoreline: the minimal raw fan-out server
# (loadgen/src/bin/raw-fanout.rs) on the same Redis, for the ratios in docs/benchmarks.md.
under_callgrind=(${CALLGRIND_OUT:+valgrind --tool=callgrind --callgrind-out-file="$CALLGRIND_OUT"})
if [[ ${SERVER:-scoreline} == raw ]]; then
    "${under_callgrind[@]}" "$bin/raw-fanout" "127.0.0.1:$service_port" "redis://127.0.0.1:$redis_port/" >"$log" 2>&1 &
else
    RUST_LOG=${RUST_LOG:-warn} "${under_callgrind[@]}" \
        "$bin/scoreline-service" --listen "127.0.0.1:$service_port" \
        --redis-url "redis://127.0.0.1:$redis_port/" --max-connections 20000 \
        ${WORKERS:+--workers "$WORKERS"} ${SERVICE_ARGS:-} >"$log" 2>&1 &
fi
service_pid=$!
cleanup() {
    # The service first, so its log does not end with a Redis connection it saw vanish.
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
}
trap cleanup EXIT

ready() {
    if [[ ${SERVER:-scoreline} == raw ]]; then
        ss -Htln "sport = :$service_port" | grep -q .
    else
        curl -fsS "http://127.0.0.1:$service_port/readyz" >/dev/null 2>&1
    fi
}
for _ in $(seq "${READY_TRIES:-100}"); do
    if ready; then
        break
    fi
    sleep 0.1
done
ready

if [[ -n ${PERF_DATA:-} ]]; then
    (sleep "${PERF_DELAY_SECS:-5}" && exec perf record -q -F 999 -p "$service_pid" -o "$PERF_DATA" \
        -- sleep "${PERF_SECS:-10}") >/dev/null 2>&1 &
fi
status=0
"$bin/loadgen" --scenario "$scenario" --url "ws://127.0.0.1:$service_port/ws" \
    --redis-url "redis://127.0.0.1:$redis_port/" --server-pid "$service_pid" "$@" || status=$?
# The service's own view: its latency histogram (from receiving an event off Redis to handing
# its frame to the socket, per batch) splits the client-side figure into server and the rest;
# the counters say whether it dropped events under overload, refilled gaps or cut slow clients.
[[ ${SERVER:-scoreline} == raw ]] || curl -fsS "http://127.0.0.1:$service_port/metrics" | grep -E '^scoreline_(publish_to_send_seconds_(bucket|sum|count)|events_(in|dropped_overload|backfilled)_total|event_gaps_total|resyncs_total|slow_client_disconnects_total|frames_out_total|canary_failures_total|redis_reconnects_total)' || true
# What the run asked of Redis, by command (calls, microseconds in all and per call): Redis runs
# one command at a time, so a server's own writes delay the events it forwards.
redis-cli -p "$redis_port" info commandstats | grep '^cmdstat_' | cut -d, -f1-3 || true
# CPU per service thread (user+system, in clock ticks of 1/100 s): the hub and the broker run on
# their own threads, the sessions on the actix workers.
for task in /proc/"$service_pid"/task/*; do
    echo "thread $(cat "$task/comm"): $(awk '{print $14 + $15}' "$task/stat") ticks"
done | sort | uniq -c | sort -rn -k5 | head -8 || true
# Warnings the service logged during the run (a late canary, a lost subscription...).
grep -E 'WARN|ERROR' "$log" >&2 || true
exit "$status"
