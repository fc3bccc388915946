#!/usr/bin/env python3
"""The service's own latency, from the output of `loadgen/bench-scenario.sh` (its stdout, saved
to a file): the client's p50 and p99 next to the service's histogram of the time from reading an
event off Redis to handing its frame to a socket (`scoreline_publish_to_send_seconds`).

On a busy day the client's p99 moves by a factor of two from one run to the next, the yardstick's
too, because it also counts the load generator's own wake-ups; the service's histogram moves by a
few per cent. To compare two builds of the service, run them alternately and compare these:

    for i in 1 2 3; do for b in base new; do
        BIN_DIR=/tmp/bin/$b loadgen/bench-scenario.sh s1 2>/dev/null >/tmp/run-$b-$i.out
        loadgen/server-latency.py /tmp/run-$b-$i.out
    done; done
"""
import json
import re
import sys

# The service's histogram (service/src/telemetry.rs, PUBLISH_TO_SEND_SECONDS).
HISTOGRAM = "scoreline_publish_to_send_seconds"
# Bucket bounds (seconds) whose share of deliveries is printed.
SHOWN = ("0.00025", "0.0005", "0.001", "0.002")


def sample(text, series):
    """The value of `HISTOGRAM`'s `series` line (`_sum`, `_count`), or None."""
    found = re.search(rf"^{HISTOGRAM}{series} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def summary(text):
    reports = [line for line in text.splitlines() if line.startswith('{"scenario"')]
    if not reports:
        raise ValueError("no load generator report (a line starting with {\"scenario\")")
    latency = json.loads(reports[0])["latency"]
    buckets = {
        bound: float(count)
        for bound, count in re.findall(
            rf'^{HISTOGRAM}_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M
        )
    }
    total, count = sample(text, "_sum"), sample(text, "_count")
    if not buckets or total is None or not count:
        raise ValueError("no service histogram (was this a run of Scoreline, not the yardstick?)")
    shares = "  ".join(
        f"<={float(bound) * 1000:g} ms {buckets[bound] / count:.3f}"
        for bound in SHOWN
        if bound in buckets
    )
    return (
        f"client p50 {latency['p50_ms']:.3f} ms, p99 {latency['p99_ms']:.3f} ms | "
        f"service mean {1000 * total / count:.3f} ms, {shares}"
    )


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        try:
            with open(path, encoding="utf-8") as output:
                print(f"{path}: {summary(output.read())}")
        except (OSError, ValueError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
