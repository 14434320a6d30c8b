#!/usr/bin/env bash
# The TensorFlow Python that runs the official CBiGAN code for benchmarks/reference_parity.py, in its own venv
# (TensorFlow is not a dependency of this package), and a checkout of the official code beside this repository.
# Usage: bash scripts/setup_reference.sh; then
#   python benchmarks/reference_parity.py --official ../cbigan-ad --tf-python .venv-reference/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="${VENV:-.venv-reference}"
OFFICIAL="${OFFICIAL:-../cbigan-ad}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# tensorflow-cpu and its legacy Keras (the official code is Keras 2); scikit-learn, pandas and tqdm are imported
# by the official score.py.
"$VENV/bin/python" -m pip install --quiet --progress-bar off tensorflow-cpu==2.21.0 tf-keras==2.21.0 \
    scikit-learn pandas tqdm 2>&1 | { grep -v -e "^WARNING: Location" || true; } >&2
if [ ! -f "$OFFICIAL/model.py" ]; then
    git clone --quiet https://github.com/fabiocarrara/cbigan-ad "$OFFICIAL" \
        || echo "Could not clone the official code into $OFFICIAL: put a checkout there (or pass OFFICIAL=...)." >&2
fi
echo "TensorFlow Python: $VENV/bin/python; official code: $OFFICIAL" >&2
