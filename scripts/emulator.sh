#!/usr/bin/env bash
# Sets up the local AWS emulator (moto in server mode) in ./.venv and starts it
# on loopback. Usage:
#   scripts/emulator.sh install          create .venv with moto[server] and boto3
#   scripts/emulator.sh start [PORT]     install if needed, start moto, wait until it answers
#   scripts/emulator.sh stop  [PORT]     stop the server started by `start`
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${RECONCILE_VENV:-$PWD/.venv}"

install() {
  if [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c 'import boto3, moto' 2>/dev/null; then
    return 0
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5" boto3
}

start() {
  local port="${1:-5000}"
  install
  if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
    echo "moto already answering on http://127.0.0.1:$port"
    return 0
  fi
  # AWS-managed IAM policies (AmazonECSTaskExecutionRolePolicy, ...) exist in
  # every real account; moto only knows them when asked to load them.
  # scripts/moto_server.py is moto_server with the identity pool role calls moto lacks.
  MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup "$VENV/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/reconcile-moto-$port.log" 2>&1 &
  echo $! >"${TMPDIR:-/tmp}/reconcile-moto-$port.pid"
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
      echo "moto listening on http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "moto did not start; see ${TMPDIR:-/tmp}/reconcile-moto-$port.log" >&2
  return 1
}

stop() {
  local port="${1:-5000}"
  local pidfile="${TMPDIR:-/tmp}/reconcile-moto-$port.pid"
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "${1:-start}" in
  install) install ;;
  start) start "${2:-5000}" ;;
  stop) stop "${2:-5000}" ;;
  *) echo "usage: $0 install|start [PORT]|stop [PORT]" >&2; exit 64 ;;
esac
