#!/usr/bin/env bash
# Instructions per event of each consumer stage, counted by valgrind (cachegrind), on the
# consumer benches' events (metering/examples/consumer_stage.rs). Unlike timings, counts
# do not move with the machine's load: compare two builds with this, time them with
# bench/consumer.sh. Each stage runs once with no repetition (the set-up alone) and once
# with REPETITIONS; the difference divided by the events is the stage's cost per event.
#
#   bench/consumer-instructions.sh [EVENTS] [REPETITIONS]     (defaults 10000 and 5)
#
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-10000}"
repetitions="${2:-5}"
if ! command -v valgrind > /dev/null; then
  echo "valgrind is not installed: apt-get install valgrind" >&2
  exit 2
fi
echo "== cargo build --profile bench -p metering --example consumer_stage" >&2
cargo build --profile bench -p metering --example consumer_stage >&2
binary=target/release/examples/consumer_stage

instructions() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$binary" "$@" 2>&1 | awk '/I *refs:/ { gsub(",", "", $NF); print $NF }'
}

echo
printf '%-10s %12s %22s\n' stage events "instructions/event"
for stage in decode counters parquet pipeline; do
  base="$(instructions "$stage" "$events" 0)"
  total="$(instructions "$stage" "$events" "$repetitions")"
  printf '%-10s %12s %22s\n' "$stage" "$events" \
    "$(( (total - base) / (events * repetitions) ))"
done
