#!/usr/bin/env bash
# The test suite: set up (first run), then pytest; then the tests marked `numerics` again under oneDNN's AVX2
# kernels. oneDNN picks its kernels, and with them the order of float sums, by the processor's instruction set, so
# a bound on a difference between two ways of computing must hold on other kernels than this machine's own.
# Slow tests run only with --runslow; arguments go to both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
if [ -z "${ONEDNN_MAX_CPU_ISA:-}" ]; then  # a run already pinned to one kernel path has nothing to compare with
    echo "The numerics tests again under ONEDNN_MAX_CPU_ISA=AVX2:"
    status=0
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python -m pytest -m numerics "$@" || status=$?
    [ "$status" -eq 5 ] && status=0  # pytest's "no tests collected": the arguments selected no numerics test
    exit "$status"
fi
