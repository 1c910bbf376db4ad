#!/usr/bin/env bash
# Retention benchmark: the embedded database's size after 1M and 10M events with the log's
# retention off and on, and the latency of appends while retention runs. Bounded in count;
# it writes in a temporary directory (TMPDIR), which is removed at the end.
# Usage: bench/retention.sh [--events N] [--frame-events N] [--step N]
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_LOG="${RUST_LOG:-error}"
cargo run --quiet --release -p tests --bin bench-retention -- "$@"
