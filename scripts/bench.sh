#!/usr/bin/env bash
# Benchmark: apply, no-op plan and destroy of generated stacks (1 VPC, N subnets,
# N/5 security groups) against a private moto, printing a Markdown table of
# seconds, AWS calls and peak RSS. The emulator answers at once, so the seconds
# measure reconcile's own overhead, not AWS latency.
#
#   bash scripts/bench.sh            # N = 10 50 200
#   bash scripts/bench.sh 5 100      # other sizes (N subnets, at most 256)
#
# Environment: RECONCILE_BENCH_PORT (default 5070), CARGO_TARGET_DIR (honoured by
# cargo), RECONCILE_VENV (the virtualenv holding moto; default ./.venv).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PORT="${RECONCILE_BENCH_PORT:-5070}"
VENV="${RECONCILE_VENV:-$ROOT/.venv}"
export RECONCILE_BENCH_PORT="$PORT" RECONCILE_VENV="$VENV"

# The benchmark resets the emulator between sizes: never do that to a moto
# someone else started.
if curl -fsS "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1; then
  echo "bench: something already answers on port $PORT; set RECONCILE_BENCH_PORT to a free port" >&2
  exit 1
fi

STARTED=0
cleanup() {
  local rc=$?
  if [ "$STARTED" = 1 ]; then
    scripts/emulator.sh stop "$PORT" >/dev/null 2>&1 || echo "bench: could not stop moto on port $PORT" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STARTED=1
scripts/emulator.sh start "$PORT" >&2
"$VENV/bin/python" scripts/bench.py "$@"
