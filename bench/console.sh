#!/usr/bin/env bash
# Console page speed: how fast the operator console at /admin/ paints with many customers.
# Creates CUSTOMERS customers (default 1,000) through the admin API, a few of them with
# traffic, on a fresh embedded `tollgate serve` (release build, simulated upstream), then
# loads the overview and the customer list in headless Chromium (Selenium) ROUNDS times
# and prints the medians: first contentful paint, and the time until the page has drawn
# its data (the figures table, or every customer row with its usage bars). Also times the
# API calls those pages make. Everything stays on 127.0.0.1. See BENCHMARKS.md.
#
#   bench/console.sh [--customers 1000] [--rounds 5] [--binary PATH]
#
# --binary runs an already built `tollgate` (a debug build gives an upper bound) instead of
# building the release one.
#
# Needs Debian's chromium and chromium-driver (installed when missing, as root) and the
# pinned Selenium of tests/clients/python.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
customers=1000
rounds=5
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --customers) customers="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --binary) binary="${2:?}"; shift 2 ;;
    *) echo "unknown argument $1; see the header of bench/console.sh" >&2; exit 2 ;;
  esac
done
for package in chromium chromium-driver; do
  command_name="$package"; [ "$package" = chromium-driver ] && command_name=chromedriver
  if ! command -v "$command_name" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq "$package" >/dev/null
  fi
done
python="$(tests/clients/python.sh)"
if [ -z "${binary:-}" ]; then
  cargo build --release -p tollgate >&2
  binary="$(pwd)/target/release/tollgate"
fi
work="$(mktemp -d)"
export TOLLGATE_DATA_DIR="$work/data"
cleanup() {
  if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
token="$("$binary" --json admin-token --name bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
"$binary" serve --upstream simulated --listen "127.0.0.1:$port" \
  --model-prices docs/model-prices.toml >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/admin/" >/dev/null 2>&1 && break
  sleep 0.1
done
"$python" bench/console_paint.py "http://127.0.0.1:$port" "$token" "$customers" "$rounds"
