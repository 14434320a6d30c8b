#!/usr/bin/env bash
# The main job: set up (first run), then train and test CBiGAN on the embedded texture data.
# Extra arguments go to `anomalib-cbigan demo` (e.g. --model Egbad --category grass --epochs 30).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/anomalib-cbigan demo "$@"
