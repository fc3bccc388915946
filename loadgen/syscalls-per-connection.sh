#!/usr/bin/env bash
# Counts the service's system calls (perf's syscall tracepoints) over a run of 2,000 clients
# that connect, subscribe, get one event and leave. A count per connection does not depend on
# how busy the machine is, unlike CPU seconds.
#
#   loadgen/syscalls-per-connection.sh <bin dir> <output csv>
#   SERVER=raw loadgen/syscalls-per-connection.sh <bin dir> <output csv>   # the yardstick
set -u
cd "$(dirname "$0")/.."
# The service is the script's child; perf attaches to it by PID once it exists.
if [[ ${SERVER:-scoreline} == raw ]]; then process=raw-fanout; else process=scoreline-servi; fi
BIN_DIR=$1 loadgen/bench-scenario.sh custom --clients 2000 --topics 1 --rate 1 --secs 1 >/dev/null 2>&1 &
script=$!
pid=""
for _ in $(seq 200); do
    pid=$(pgrep -P "$script" "$process" || true)
    [[ -n $pid ]] && break
    sleep 0.02
done
perf stat -x, -e 'syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_accept4,syscalls:sys_enter_setsockopt,syscalls:sys_enter_epoll_ctl' -p "$pid" -o "$2" &
perfpid=$!
wait "$script"
kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null
cat "$2"
