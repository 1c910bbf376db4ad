#!/usr/bin/env bash
# Metering benchmark: events/s from the embedded log into the counters and Parquet, with and
# without the alert rules. Bounded in count; nothing leaves the machine.
# Usage: bench/metering.sh [--events N] [--customers N] [--hours N] [--event-format binary|binary-v2|json]
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_LOG="${RUST_LOG:-error}"
cargo run --quiet --release -p tests --bin bench-metering -- "$@"
