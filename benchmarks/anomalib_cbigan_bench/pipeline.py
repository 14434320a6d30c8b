"""``Sweep``: anomalib's ``Benchmark`` pipeline, made to run our sweeps to the end and resumably.

What it keeps from anomalib: the config format (``accelerator`` and a ``benchmark`` section whose
``grid`` keys multiply the jobs), the job generator and job it subclasses, and anomalib's
``SerialRunner`` / ``ParallelRunner`` (one process per CUDA device, as ``anomalib benchmark``).

What it adds, each because anomalib's pipeline lacks it:

* ``workers`` (config key or argument): parallel jobs on CPU too (anomalib runs CPU sweeps serially
  and would hand a CPU worker a device *index*);
* ``output`` (config key or argument; default ``results/sweeps/<config name>``): every finished job
  saves its row there at once (anomalib writes its CSV only after the last job, so an interrupted
  sweep loses everything); a re-run skips finished jobs; ``results.csv`` holds every row in the
  folder (so several configs can share one, as the four MVTec AD parts do);
* errors in the configuration and in the data of every job that will run are raised before the first job
  trains (anomalib catches them and prints "check runs/pipeline.log"); failed jobs are listed at the end
  with their error; :meth:`Sweep.plan` does only that (a dry run);
* data roots are named, not written: ``root: ${MVTEC_ROOT}`` takes the environment variable, else the default
  of :mod:`~anomalib_cbigan_bench.data_roots` (the shared folder beside the checkout);
* ``runner="ray"``: every job a Ray task, on a local Ray instance or a cluster
  (:mod:`~anomalib_cbigan_bench.ray_runner`);
* settings given on the command line win over the config's (``overrides``: anomalib's dotted option names,
  see :mod:`~anomalib_cbigan_bench.overrides`), and ``smoke`` runs every job for two steps into a folder
  of its own.

Example:
    >>> from anomalib_cbigan_bench import Sweep
    >>> Sweep(output_dir="results/sweeps/example", workers=2).workers
    2
"""

from __future__ import annotations

import logging
import os
from argparse import Namespace
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from anomalib.pipelines import Benchmark
from anomalib.pipelines.components.base import Runner
from anomalib.pipelines.components.runners import ParallelRunner, SerialRunner
from anomalib.utils.logging import redirect_logs

from anomalib_cbigan.atomic_files import atomic_path

from .data_roots import expand_all
from .generator import SweepConfigError, SweepJobGenerator, job_label
from .job import FAILED, SweepJob, finished_rows, read_failure
from .overrides import SMOKE, apply_overrides
from .ray_runner import RayRunner, import_ray

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.csv"
# Keys a sweep config may have at the top (plus "x-..." keys for YAML anchors) and in its benchmark section;
# anything else is a typo that would otherwise be ignored (`worker: 2` would run serially).
TOP_LEVEL_KEYS = ("accelerator", "benchmark", "workers", "output")
RUNNERS = ("anomalib", "ray")
BENCHMARK_KEYS = ("seed", "model", "data", "trainer", "in_memory", "curve", "checkpoint_minutes", "validations")


class Sweep(Benchmark):
    """Run a sweep config through anomalib's benchmark pipeline; see the module docstring.

    Args:
        output_dir (Path | str | None): Overrides the config's ``output``.
        workers (int | None): Overrides the config's ``workers`` (parallel CPU jobs; default 1).
        overrides (dict | None): Settings over the config's, ``{"trainer.max_steps": 100, ...}``
            (:func:`~anomalib_cbigan_bench.overrides.parse_overrides` reads them from a command line).
        smoke (bool): Two training steps a job on batches of 4, written to ``<output>_smoke`` unless
            ``output_dir`` is given: checks the whole sweep (data, models, test, report) in minutes.
        runner (str): ``"anomalib"`` (anomalib's serial or parallel runner, on this machine) or ``"ray"`` (each job a
            Ray task: :class:`~anomalib_cbigan_bench.ray_runner.RayRunner`; ``workers`` then sets the cores a CPU job
            asks for, this machine's divided by ``workers``).
        address (str | None): With ``runner="ray"``, the cluster to run on; ``None`` starts a local Ray instance.
    """

    def __init__(
        self,
        output_dir: Path | str | None = None,
        workers: int | None = None,
        overrides: dict[str, Any] | None = None,
        *,
        smoke: bool = False,
        runner: str = "anomalib",
        address: str | None = None,
    ) -> None:
        if runner not in RUNNERS:
            msg = f"runner must be one of {list(RUNNERS)}, got {runner!r}"
            raise SweepConfigError(msg)
        if address is not None and runner != "ray":
            msg = "an address is a Ray cluster's: it needs runner='ray' (--runner ray)"
            raise SweepConfigError(msg)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.workers = workers
        self.overrides = dict(overrides or {})
        self.smoke = smoke
        self.runner = runner
        self.address = address
        self.raw_benchmark: dict[str, Any] = {}  # the benchmark section before its data roots were expanded
        self.failed_jobs: list[str] = []

    def _get_args(self, args: Namespace | None) -> dict[str, Any]:
        if args is None:
            args = self.get_parser().parse_args()
        pipeline_args = super()._get_args(args) or {}
        if not isinstance(pipeline_args, dict):
            msg = f"{args.config}: a sweep configuration is a YAML mapping, got {type(pipeline_args).__name__}"
            raise SweepConfigError(msg)
        _check_keys(pipeline_args, TOP_LEVEL_KEYS, args.config, "")
        if isinstance(pipeline_args.get("benchmark"), dict):
            _check_keys(pipeline_args["benchmark"], BENCHMARK_KEYS, args.config, "benchmark.")
            benchmark = pipeline_args["benchmark"]
            if self.smoke:
                benchmark = apply_overrides(benchmark, SMOKE, strict=False)
            pipeline_args["benchmark"] = apply_overrides(benchmark, self.overrides)
            self.raw_benchmark = pipeline_args["benchmark"]
        try:
            pipeline_args = expand_all(pipeline_args)
        except KeyError as error:
            msg = f"{args.config}: {error.args[0]}"
            raise SweepConfigError(msg) from error
        default_output = Path("results") / "sweeps" / Path(args.config).stem
        if self.output_dir is None:
            output = Path(pipeline_args.get("output") or default_output)
            self.output_dir = output.with_name(f"{output.name}_smoke") if self.smoke else output
        workers = self.workers if self.workers is not None else pipeline_args.get("workers", 1)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            msg = f"workers must be a whole number >= 1, got {workers!r}"
            raise SweepConfigError(msg)
        self.workers = workers
        pipeline_args.setdefault("accelerator", "cpu")
        return pipeline_args

    def _setup_runners(self, args: dict[str, Any]) -> list[Runner]:
        accelerators = args["accelerator"] if isinstance(args["accelerator"], list) else [args["accelerator"]]
        runners: list[Runner] = []
        for accelerator in accelerators:
            if accelerator not in {"cpu", "cuda"}:
                msg = f"Unsupported accelerator: {accelerator!r} (a sweep runs on 'cpu' or 'cuda')"
                raise SweepConfigError(msg)
            if accelerator == "cpu":
                workers = self.workers or 1
                # cores a job is given; a serial run leaves torch its own default
                shared = workers > 1 or self.runner == "ray"
                threads = max(1, (os.cpu_count() or 1) // workers) if shared else None
            else:
                workers, threads = max(torch.cuda.device_count(), 1), None
            generator = SweepJobGenerator(accelerator, self.output_dir, threads=threads)
            if self.runner == "ray":
                import_ray()  # installed, or an error saying how, before anything runs
                runners.append(RayRunner(generator, raw_args=self.raw_benchmark, address=self.address))
            else:
                runners.append(SerialRunner(generator) if workers == 1 else ParallelRunner(generator, n_jobs=workers))
        return runners

    def plan(self, args: Namespace | None = None) -> pd.DataFrame:
        """A dry run: build every job's model and data, check the data of the jobs still to run, train nothing.

        Prints one line a job and returns them (``job_id``, ``job``, ``status``: ``to run`` or ``finished``).

        Raises:
            SweepConfigError: naming the first job whose configuration or data cannot be used.
        """
        pipeline_args = self._get_args(args)
        rows = []
        for runner in self._setup_runners(pipeline_args):
            generator = runner.generator
            containers = generator.plan(pipeline_args.get(SweepJob.name) or {})
            for container, name in zip(containers, generator.job_ids(containers), strict=True):
                status = "finished" if generator.is_finished(name) else "to run"
                rows.append({"job_id": name, "job": job_label(container), "accelerator": generator.accelerator,
                             "status": status})  # fmt: skip
        for index, row in enumerate(rows, 1):
            print(f"[{index}/{len(rows)}] {row['job']} ({row['job_id']}): {row['status']}", flush=True)
        to_run = sum(row["status"] == "to run" for row in rows)
        print(f"{to_run} jobs to run, {len(rows) - to_run} finished in {self.output_dir}; data checked, nothing trained",
              flush=True)  # fmt: skip
        return pd.DataFrame(rows)

    def run(self, args: Namespace | None = None) -> pd.DataFrame:
        """Run every unfinished job; return (and write to ``<output>/results.csv``) the rows of all runs.

        Raises:
            SweepConfigError: before any job runs, if the configuration cannot be run.
        """
        pipeline_args = self._get_args(args)
        runners = self._setup_runners(pipeline_args)
        job_args = pipeline_args.get(SweepJob.name) or {}
        planned = _planned_job_ids(runners, job_args, check_data=True)  # fail fast, while errors still reach the user
        self.output_dir.mkdir(parents=True, exist_ok=True)
        redirect_logs(str(self.output_dir / "pipeline.log"))
        for runner in runners:
            try:
                runner.run(job_args)
            except Exception:  # anomalib's runners raise once at the end if any job failed
                if isinstance(runner, RayRunner):  # records its failed jobs itself: anything raised is the runner's
                    raise
                logger.exception("Some jobs of the %s runner failed.", runner.generator.accelerator)
        results = self._collect_rows(planned)
        self.failed_jobs = self._report_failures(planned)
        return results

    def collect(self, args: Namespace | None = None) -> pd.DataFrame:
        """Train nothing: write ``<output>/results.csv`` from the jobs finished so far, in the plan's order (what
        :meth:`run` writes at its end), for a sweep stopped between jobs; return its rows.

        Raises:
            SweepConfigError: if the configuration cannot be planned.
        """
        pipeline_args = self._get_args(args)
        job_args = pipeline_args.get(SweepJob.name) or {}
        return self._collect_rows(_planned_job_ids(self._setup_runners(pipeline_args), job_args, check_data=False))

    def _collect_rows(self, planned: Sequence[str]) -> pd.DataFrame:
        results = pd.DataFrame(finished_rows(self.output_dir, planned))
        if not results.empty:
            write_results(results, self.output_dir / RESULTS_FILE)
        print(f"{len(results)} finished jobs in {self.output_dir / RESULTS_FILE}", flush=True)
        return results

    def _report_failures(self, planned: Sequence[str]) -> list[str]:
        """Print the failures of this sweep's jobs (not those of other configs sharing the folder)."""
        failures = sorted(path for path in (self.output_dir / FAILED).glob("*.txt") if path.stem in planned)
        for failure in failures:
            written = read_failure(failure)
            print(f"failed job {failure.stem}: {written[1] if written else 'see ' + str(failure)}", flush=True)
        if failures:
            print(
                f"{len(failures)} jobs failed (details: {self.output_dir / FAILED}, {self.output_dir / 'pipeline.log'}); "
                "run the same command again to retry them, finished jobs are skipped.",
                flush=True,
            )
        return [failure.stem for failure in failures]


def _planned_job_ids(runners: Sequence[Runner], job_args: dict[str, Any], *, check_data: bool) -> list[str]:
    """Every runner's planned job ids, in the plan's order; ``check_data`` checks each job's data (a Ray runner
    told not to check its cluster's data is not checked here either)."""
    planned: list[str] = []
    for runner in runners:
        check = check_data and (not isinstance(runner, RayRunner) or runner.check_data)
        planned += runner.generator.job_ids(runner.generator.plan(job_args, check_data=check))
    return planned


def _check_keys(section: dict[str, Any], known: tuple[str, ...], config: Path | str, prefix: str) -> None:
    unknown = [key for key in section if key not in known and not str(key).startswith("x-")]
    if unknown:
        msg = f"{config}: unknown key(s) {[prefix + str(key) for key in unknown]}; known: {[prefix + key for key in known]}"
        raise SweepConfigError(msg)


def write_results(results: pd.DataFrame, path: Path) -> None:
    """Write the results CSV whole, then rename it into place (a crash never leaves half a file)."""
    with atomic_path(path) as tmp:
        results.to_csv(tmp, index=False)
