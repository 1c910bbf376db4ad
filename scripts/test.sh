#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate (unit, contract,
# in-process proxy tests, and end-to-end tests that drive the real `tollgate` binary
# against the wire-level fake Bedrock). Runs on a fresh machine: it installs what the
# tests need that the machine may lack.
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_command() {
  local command_name="$1" package="$2"
  if command -v "$command_name" >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $package (needed by the tests)"
    apt-get update -qq && apt-get install -y -qq "$package" >/dev/null
  else
    echo "error: '$command_name' is needed by the tests; install the '$package' package and rerun" >&2
    exit 1
  fi
}

ensure_command curl curl

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
