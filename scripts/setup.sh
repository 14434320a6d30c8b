#!/usr/bin/env bash
# Create .venv and install the package with its test tools, once per change of pyproject.toml.
# torch and torchvision are pinned as a pair in pyproject.toml (a mismatched pair fails to import).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="${VENV:-.venv}"

# pip, minus the noise of this machine's local-index warnings; keeps pip's exit status.
pip_quiet() {
    "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v -e "^WARNING: Location" -e "^Requirement already satisfied" || true; } >&2
}

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "Setting up $VENV with $("$PYTHON" --version) (first run: a few minutes, about 6.5 GB)..." >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    pip_quiet install --quiet --upgrade pip
    pip_quiet install --progress-bar off -e ".[dev]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
