#!/usr/bin/env bash
# Installs the Python clients the tests drive (boto3, requests, DuckDB as a local
# stand-in for Athena, and openapi-spec-validator for the admin API's document, Selenium for the console in Chromium, the Anthropic and OpenAI SDKs; pinned, in
# a virtualenv) and prints the
# virtualenv's python. TOLLGATE_CLIENTS_HOME chooses where (default ~/.cache/tollgate-clients).
set -euo pipefail
BOTO3_VERSION="1.44.8"
REQUESTS_VERSION="2.32.5"
DUCKDB_VERSION="1.5.6"
OPENAPI_VALIDATOR_VERSION="0.9.0"
SELENIUM_VERSION="4.45.0"
ANTHROPIC_VERSION="2.16.0"
OPENAI_VERSION="3.57.0"
home="${TOLLGATE_CLIENTS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-clients}"
venv="$home/python-boto3-$BOTO3_VERSION-requests-$REQUESTS_VERSION-duckdb-$DUCKDB_VERSION-openapi-$OPENAPI_VALIDATOR_VERSION-selenium-$SELENIUM_VERSION-anthropic-$ANTHROPIC_VERSION-openai-$OPENAI_VERSION"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import boto3, requests, duckdb, openapi_spec_validator, selenium, anthropic, openai" 2>/dev/null; then
  echo "installing boto3==$BOTO3_VERSION, requests==$REQUESTS_VERSION, duckdb==$DUCKDB_VERSION openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION, selenium==$SELENIUM_VERSION, anthropic==$ANTHROPIC_VERSION and openai==$OPENAI_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "boto3==$BOTO3_VERSION" "requests==$REQUESTS_VERSION" "duckdb==$DUCKDB_VERSION" "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION" "selenium==$SELENIUM_VERSION" "anthropic==$ANTHROPIC_VERSION" "openai==$OPENAI_VERSION" >&2
fi
echo "$venv/bin/python"
