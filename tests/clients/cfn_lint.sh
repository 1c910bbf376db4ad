#!/usr/bin/env bash
# Installs cfn-lint (pinned, in a virtualenv) for the deployment template's test and prints
# the path of its cfn-lint. TOLLGATE_CLIENTS_HOME chooses where (default ~/.cache/tollgate-clients).
set -euo pipefail
CFN_LINT_VERSION="1.58.0"
home="${TOLLGATE_CLIENTS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-clients}"
venv="$home/cfn-lint-$CFN_LINT_VERSION"
if [ ! -x "$venv/bin/cfn-lint" ] || ! "$venv/bin/cfn-lint" --version >/dev/null 2>&1; then
  echo "installing cfn-lint==$CFN_LINT_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" >&2
fi
echo "$venv/bin/cfn-lint"
