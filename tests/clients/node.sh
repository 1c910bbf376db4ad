#!/usr/bin/env bash
# Installs the JavaScript clients the tests drive (the AWS SDK for JavaScript v3 and the
# openai package, pinned)
# and prints its node_modules directory, for NODE_PATH. TOLLGATE_CLIENTS_HOME chooses
# where (default ~/.cache/tollgate-clients).
set -euo pipefail
SDK_VERSION="3.1164.0"
OPENAI_VERSION="7.59.0"
home="${TOLLGATE_CLIENTS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-clients}"
dir="$home/node-client-bedrock-runtime-$SDK_VERSION-openai-$OPENAI_VERSION"
if [ ! -d "$dir/node_modules/@aws-sdk/client-bedrock-runtime" ] || [ ! -d "$dir/node_modules/openai" ]; then
  echo "installing @aws-sdk/client-bedrock-runtime@$SDK_VERSION and openai@$OPENAI_VERSION into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund "@aws-sdk/client-bedrock-runtime@$SDK_VERSION" "openai@$OPENAI_VERSION" >&2)
fi
echo "$dir/node_modules"
