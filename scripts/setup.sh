#!/usr/bin/env bash
# Create .venv and install the package, the benchmark harness and the test tools, once per change of the files
# that decide what is installed. pyproject.toml holds ranges; constraints.txt the exact set CI tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="${VENV:-.venv}"

# pip, minus the noise of this machine's local-index warnings; keeps pip's exit status.
pip_quiet() {
    "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v -e "^WARNING: Location" -e "^Requirement already satisfied" || true; } >&2
}

stamp="$VENV/.installed-$(cat pyproject.toml benchmarks/pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "Setting up $VENV with $("$PYTHON" --version) (first run: a few minutes, about 6.5 GB)..." >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    pip_quiet install --quiet --upgrade pip
    pip_quiet install --progress-bar off -c constraints.txt -e ".[dev]" -e "./benchmarks[ray]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
