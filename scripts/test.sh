#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate (unit, contract,
# in-process proxy tests, and end-to-end tests that drive the real `tollgate` binary
# against the wire-level fake Bedrock, and the official boto3 SDK and the spec's client
# examples against the proxy, the HTML invoice rendered in headless Chromium, and the operator console driven in Chromium by Selenium), with the AWS backends tested against a local AWS
# emulator (moto, pinned, installed into a virtualenv by tests/emulators/moto.sh). Runs on
# a fresh machine: it installs what the tests need that the machine may lack.
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
ensure_command python3 python3
ensure_command node nodejs
ensure_command npm npm
ensure_command chromium chromium
ensure_command chromedriver chromium-driver
TOLLGATE_TEST_CHROMIUM="$(command -v chromium)"
TOLLGATE_TEST_CHROMEDRIVER="$(command -v chromedriver)"
export TOLLGATE_TEST_CHROMIUM TOLLGATE_TEST_CHROMEDRIVER

echo "== installing the pinned clients (boto3, requests, DuckDB, Selenium and the Anthropic and OpenAI SDKs for Python, the AWS SDK for JavaScript v3 and openai for node, cfn-lint)"
TOLLGATE_TEST_PYTHON="$(tests/clients/python.sh)"
TOLLGATE_TEST_NODE_PATH="$(tests/clients/node.sh)"
TOLLGATE_TEST_CFN_LINT="$(tests/clients/cfn_lint.sh)"
export TOLLGATE_TEST_PYTHON TOLLGATE_TEST_NODE_PATH TOLLGATE_TEST_CFN_LINT

echo "== starting the AWS emulator"
TOLLGATE_EMULATOR_STATE="$(mktemp -d)"
export TOLLGATE_EMULATOR_STATE
trap 'tests/emulators/moto.sh stop; rm -rf "$TOLLGATE_EMULATOR_STATE"' EXIT
TOLLGATE_TEST_AWS_ENDPOINT="$(tests/emulators/moto.sh start)"
export TOLLGATE_TEST_AWS_ENDPOINT
echo "AWS emulator at $TOLLGATE_TEST_AWS_ENDPOINT"
# The tests only ever talk to the emulator: dummy credentials, never the caller's own.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== structure (module sizes, import cycles)"
python3 scripts/check-structure.py
echo "== cargo test"
cargo test --workspace --locked
