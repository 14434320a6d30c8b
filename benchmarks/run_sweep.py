"""Run a sweep config through anomalib's benchmark pipeline (our ``Sweep`` subclass), then write its report.

Re-running the same command skips the jobs already finished (each saves its row in
``<output>/rows/`` as soon as it ends), so an interrupted sweep resumes where it stopped.

Usage:
    python benchmarks/run_sweep.py --config benchmarks/sweeps/embedded_textures.yaml [--workers 2] [--output DIR]
    python benchmarks/run_sweep.py --config benchmarks/sweeps/mvtec_textures_gpu.yaml      # on a GPU machine

Writes ``<output>/results.csv`` (every finished job: configuration, seed, metrics, train/test seconds,
inference ms per image), ``<output>/report.md``, ``summary.csv``/``.md`` and ``plots/*.png``.
"""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from pathlib import Path

from anomalib_cbigan.sweep import Sweep, SweepConfigError
from anomalib_cbigan.sweep.pipeline import RESULTS_FILE
from anomalib_cbigan.sweep.report import write_report


def main(argv: list[str] | None = None) -> int:
    """Run the sweep and its report; the exit status is 1 if a job failed or the config is unusable."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="a sweep YAML (benchmarks/sweeps/)")
    parser.add_argument("--workers", type=int, help="parallel CPU jobs (default: the config's, else 1)")
    parser.add_argument("--output", type=Path, help="results folder (default: the config's `output`)")
    parser.add_argument("--roc-category", help="the category whose ROC curves are drawn (default: the first)")
    parser.add_argument("--no-report", action="store_true", help="only run the jobs")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"no sweep config at {args.config}")
    sweep = Sweep(output_dir=args.output, workers=args.workers)
    try:
        results = sweep.run(Namespace(config=args.config))
    except SweepConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not results.empty and not args.no_report:
        report = write_report(sweep.output_dir / RESULTS_FILE, roc_category=args.roc_category)
        print(f"report: {report}")
    return 1 if sweep.failed_jobs else 0


if __name__ == "__main__":
    sys.exit(main())
