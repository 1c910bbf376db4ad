#!/usr/bin/env bash
# Consumer pipeline per core (criterion, metering/benches/pipeline.rs): events/s for the
# decode, aggregation into counter cells, dedupe and aggregation through the in-memory
# counters, Parquet encode, and the whole BatchApplier::apply_entries path (in-memory
# counters and object store), for batches of 1000 and 10,000 events. The decode and the
# whole path run on frames of binary events as proxies write them (`decode`, `pipeline`),
# on frames of JSON lines (`*_json_frames`) and on one JSON event per record
# (`*_json_records`). One thread: a current-thread tokio runtime. Prints one line per
# bench. See BENCHMARKS.md.
#
#   bench/consumer.sh [FILTER]     FILTER is a criterion name filter, e.g. pipeline
#
# TOLLGATE_BENCH_CLOCK=cpu counts the bench thread's CPU time instead of wall time, for
# figures per core on a machine shared with other work.
set -euo pipefail
cd "$(dirname "$0")/.."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "== cargo bench -p metering --bench pipeline ${1:-}" >&2
cargo bench -p metering --bench pipeline -- ${1:+"$1"} 2>&1 | tee "$log" >&2
echo
echo "bench                                    time (median)    events/s (median)"
# criterion prints "name  time: [lo mid hi]" then "thrpt: [lo mid hi]", the name sometimes
# on a line of its own.
awk '
  /^consumer\// { name = $1 }
  /%/ { next }
  /time:/ { time = $(NF-3) " " $(NF-2) }
  /thrpt:/ {
    value = $(NF-3); unit = $(NF-2)
    scale = (unit ~ /^Melem/) ? 1000000 : (unit ~ /^Kelem/) ? 1000 : 1
    printf "%-40s %-16s %12.0f\n", name, time, value * scale
  }
' "$log"
