#!/usr/bin/env bash
# Installs moto's server mode (pinned, in a virtualenv) and starts it on 127.0.0.1 on a
# free port, serving one request at a time (moto_serial.py). Prints the endpoint URL on
# stdout; logs and the pid go to the state directory.
#
#   tests/emulators/moto.sh start   -> prints http://127.0.0.1:PORT once the server answers
#   tests/emulators/moto.sh stop    -> stops the server started by `start`
#
# TOLLGATE_EMULATOR_HOME chooses where the virtualenv lives (default ~/.cache/tollgate-emulators).
set -euo pipefail

MOTO_VERSION="5.2.5"
home="${TOLLGATE_EMULATOR_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-emulators}"
venv="$home/moto-$MOTO_VERSION"
state="${TOLLGATE_EMULATOR_STATE:-$home/run}"
mkdir -p "$home" "$state"

install_moto() {
  if [ -x "$venv/bin/moto_server" ]; then
    return
  fi
  echo "installing moto[server]==$MOTO_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  install_moto
  local port
  port="$(free_port)"
  # One request at a time: see moto_serial.py (conditional writes must be atomic).
  "$venv/bin/python" "$(dirname "$0")/moto_serial.py" 127.0.0.1 "$port" >"$state/moto-$port.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/moto.pid"
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
      echo "http://127.0.0.1:$port"
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: moto_server exited; see $state/moto-$port.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "error: moto_server did not answer on port $port within 20 s; see $state/moto-$port.log" >&2
  exit 1
}

stop() {
  if [ -f "$state/moto.pid" ]; then
    kill "$(cat "$state/moto.pid")" 2>/dev/null || true
    rm -f "$state/moto.pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
