#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the Python oracle tests (DuckDB,
# scipy) against the built binary. Creates .venv with tests/requirements.txt on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
# Quick when everything is installed; picks up packages added to the file since.
.venv/bin/pip install --quiet -r tests/requirements.txt

# `cargo test` also builds target/debug/cxlake (integration tests need the binary), with the
# same features, so the Python tests below use what was just tested.
cargo test --workspace --locked
.venv/bin/python -m pytest -q --durations=15 tests/python "$@"
