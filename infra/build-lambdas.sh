#!/usr/bin/env bash
# Builds the three Lambda functions for arm64 (provided.al2023) as zip files and prints
# their sizes: target/lambda/<name>/bootstrap.zip. Needs cargo-lambda
# (pip install cargo-lambda, which brings Zig as the cross linker) and the Rust standard
# library for aarch64-unknown-linux-gnu (cargo-lambda installs it with rustup if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-lambda >/dev/null 2>&1 || { echo "cargo-lambda is not installed: pip install cargo-lambda" >&2; exit 1; }
LAMBDAS=(tollgate-proxy-lambda tollgate-metering-lambda tollgate-compact-lambda)
bins=()
for lambda in "${LAMBDAS[@]}"; do bins+=(--bin "$lambda"); done
cargo lambda build --profile lambda --arm64 --output-format zip "${bins[@]}"
for lambda in "${LAMBDAS[@]}"; do
  zip="target/lambda/$lambda/bootstrap.zip"
  awk -v name="$lambda" -v bytes="$(wc -c <"$zip")" 'BEGIN { printf "%-28s %8.2f MB zipped\n", name, bytes / 1048576 }'
done
