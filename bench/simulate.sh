#!/usr/bin/env bash
# Scale simulation of the metering path (issue 17, section 7; BENCHMARKS.md): runs the real
# DynamoDB counters apply and watermarks over an in-memory table that bills every item
# read and written, for a seeded workload, and prints units and dollars per million
# events, the hottest item's writes per second, shards meeting on one item, transactions
# and Parquet objects per hour.
#
#   bench/simulate.sh [simulator options]     # default: issue 17's scenario, 10M events
#   bench/simulate.sh --help                  # every parameter
#
# Defaults: 8 shards, 200 proxies living about a minute each, 1,000 Zipf customers with the
# busiest at 10,000 events/s, 10 million events, the metering Lambda's batches (500
# records or 5 s, runs of 100). Same options, same figures.
set -euo pipefail
repository="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repository/target}"
cargo build --quiet --release -p simulator --bin simulate >&2
exec "$target/release/simulate" "$@"
