#!/usr/bin/env bash
# Runs the whole test suite: installs the emulator (moto in ./.venv) if needed,
# builds, and runs unit and integration tests. Each integration test starts its
# own moto server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/emulator.sh install
cargo build --all-targets
cargo test --all-targets --no-fail-fast -- --test-threads "${RECONCILE_TEST_THREADS:-4}"
