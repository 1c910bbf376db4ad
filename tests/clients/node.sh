#!/usr/bin/env bash
# Installs the JavaScript client the tests drive (the AWS SDK for JavaScript v3, pinned)
# and prints its node_modules directory, for NODE_PATH. TOLLGATE_CLIENTS_HOME chooses
# where (default ~/.cache/tollgate-clients).
set -euo pipefail
SDK_VERSION="3.1164.0"
home="${TOLLGATE_CLIENTS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-clients}"
dir="$home/node-client-bedrock-runtime-$SDK_VERSION"
if [ ! -d "$dir/node_modules/@aws-sdk/client-bedrock-runtime" ]; then
  echo "installing @aws-sdk/client-bedrock-runtime@$SDK_VERSION into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund "@aws-sdk/client-bedrock-runtime@$SDK_VERSION" >&2)
fi
echo "$dir/node_modules"
