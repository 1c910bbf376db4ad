#!/usr/bin/env bash
# Parquet files per million events, and DuckDB's scan time over one day of them: the real
# consumer at a steady rate (default 1M events at 1,000 events/s), writing Parquet every
# batch (the design before buffering) and buffered (the server default: 128 MiB or 300 s),
# each before and after compaction. Bounded in count; nothing leaves the machine.
# Usage: bench/parquet-files.sh [--events N] [--rate N] [--frame-events N] [--producers N]
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_LOG="${RUST_LOG:-error}"
cargo build --quiet --release -p tests --bin bench-parquet-files
python="$(tests/clients/python.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scan() {
  "$python" - "$1" <<'PY'
import sys, time, duckdb
glob = sys.argv[1] + "/usage/*/*.parquet"
query = f"""SELECT customer_id, count(*) AS calls, sum(input_tokens + output_tokens) AS tokens
            FROM read_parquet('{glob}', hive_partitioning = true)
            GROUP BY customer_id"""
best = None
for _ in range(3):
    connection = duckdb.connect()
    started = time.perf_counter()
    rows = connection.execute(query).fetchall()
    elapsed = time.perf_counter() - started
    best = elapsed if best is None else min(best, elapsed)
print(f'{{"duckdb_scan_ms": {best * 1000:.1f}, "customers": {len(rows)}, "rows": {sum(r[1] for r in rows)}}}')
PY
}

for mode in per-batch buffered; do
  echo "== $mode"
  target/release/bench-parquet-files --mode "$mode" --dir "$work/$mode" "$@"
  scan "$work/$mode"
  echo "== $mode, compacted"
  target/release/bench-parquet-files --mode compact --dir "$work/$mode"
  scan "$work/$mode"
done
