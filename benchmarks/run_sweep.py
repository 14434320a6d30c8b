"""Run a sweep config through anomalib's benchmark pipeline (our ``Sweep`` subclass), then write its report.

Re-running the same command skips the jobs already finished (each saves its row in
``<output>/rows/`` as soon as it ends), so an interrupted sweep resumes where it stopped. Before the
first job trains, every job's model and data are built and the data checked (a missing category or an
unreadable image is named); ``--dry-run`` does only that. ``--collect`` trains nothing either: it writes
``results.csv`` and the report from the jobs finished so far (a sweep stopped between jobs).

Usage:
    python benchmarks/run_sweep.py --config benchmarks/sweeps/embedded_textures.yaml [--workers 2] [--output DIR]
    python benchmarks/run_sweep.py --config benchmarks/sweeps/mvtec_objects_gpu.yaml --dry-run   # check, train nothing
    python benchmarks/run_sweep.py --config benchmarks/sweeps/mvtec_objects_gpu.yaml --smoke     # 2 steps a job
    python benchmarks/run_sweep.py --config benchmarks/sweeps/grid_schedules.yaml --collect     # finished jobs only
    python benchmarks/run_sweep.py --config benchmarks/sweeps/mvtec_objects_gpu.yaml --runner ray --address auto
    python benchmarks/run_sweep.py --config benchmarks/sweeps/mvtec_objects_gpu.yaml \
        -- --data.init_args.root /data/MVTecAD --trainer.max_steps 100000 --seed 0   # anomalib options win

Options after ``--`` use ``anomalib train``'s dotted names (``--trainer.*``, ``--model.init_args.*``,
``--data.init_args.*``, ``--in_memory.*``, ``--seed``) and win over the config's, for every job they apply to.

``--runner ray`` runs each job as a Ray task (``pip install "./benchmarks[ray]"``): on a local Ray instance, or with
``--address`` on a cluster (docs/benchmarks.md, "On a Ray cluster"); rows land in the same output folder, so the
runners resume each other's sweeps.

Writes ``<output>/results.csv`` (every finished job: configuration, seed, metrics, train/test seconds,
inference ms per image), ``<output>/report.md``, ``summary.csv``/``.md``, ``plots/*.png`` and ``figures/*.png``.
"""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from pathlib import Path

from anomalib_cbigan_bench import Sweep, SweepConfigError
from anomalib_cbigan_bench.overrides import parse_overrides
from anomalib_cbigan_bench.pipeline import RESULTS_FILE, RUNNERS
from anomalib_cbigan_bench.report import write_report


def main(argv: list[str] | None = None) -> int:
    """Run (or plan) the sweep and write its report; 1 if a job failed, 2 if the config or data is unusable."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], usage="%(prog)s --config YAML [options] [-- ANOMALIB OPTIONS]"
    )
    parser.add_argument("--config", type=Path, required=True, help="a sweep YAML (benchmarks/sweeps/)")
    parser.add_argument("--workers", type=int, help="parallel CPU jobs (default: the config's, else 1)")
    parser.add_argument("--output", type=Path, help="results folder (default: the config's `output`)")
    parser.add_argument("--roc-category", help="the category whose ROC curves are drawn (default: the first)")
    parser.add_argument("--no-report", action="store_true", help="only run the jobs")
    parser.add_argument("--dry-run", action="store_true", help="build every job and check its data; train nothing")
    parser.add_argument("--collect", action="store_true",
                        help="train nothing: results.csv and the report from the jobs finished so far")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="2 steps a job, batch 4, into <output>_smoke")
    parser.add_argument("--runner", choices=RUNNERS, default="anomalib",
                        help="anomalib's runners on this machine (default), or each job a Ray task")  # fmt: skip
    parser.add_argument("--address", help="with --runner ray: the cluster's address (default: a local Ray instance)")
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        argv, passthrough = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"no sweep config at {args.config}")
    try:
        sweep = Sweep(output_dir=args.output, workers=args.workers, overrides=parse_overrides(passthrough),
                      smoke=args.smoke, runner=args.runner, address=args.address)  # fmt: skip
        if args.dry_run:
            sweep.plan(Namespace(config=args.config))
            return 0
        if args.collect:
            results = sweep.collect(Namespace(config=args.config))
        else:
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
