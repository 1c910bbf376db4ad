#!/usr/bin/env bash
# Proxy benchmark: requests/s and added latency of Tollgate in front of the fake Bedrock,
# compared with calling the fake directly through the same AWS SDK. Bounded in count;
# everything stays on 127.0.0.1. Usage: bench/proxy.sh [--requests N] [--concurrency C]
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export RUST_LOG="${RUST_LOG:-error}"
cargo run --quiet --release -p tests --bin bench-proxy -- "$@"
