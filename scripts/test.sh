#!/usr/bin/env bash
# The test suite: set up (first run), then pytest. Slow tests run only with --runslow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
