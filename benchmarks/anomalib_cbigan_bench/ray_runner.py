"""``RayRunner``: a sweep's jobs as Ray tasks, on a local Ray instance or a cluster (``run_sweep.py --runner ray``).

Ray schedules, places and retries; the runner only builds the job list and writes rows. Each job still to run is one
task asking for what it needs (one GPU for a CUDA job, its cores for a CPU job) and is retried by Ray if its worker
process or node dies (``RETRIES`` times; an error the job itself raises is not retried, it is the job's result). On
its worker the task expands the config's data roots (``${MVTEC_ROOT}``) from *that worker's* environment, prepares
the data, builds and runs the :class:`~anomalib_cbigan_bench.job.SweepJob` in a folder of its own and sends back
the files the job wrote; the driver writes them into the sweep's output folder as each task ends, the row last, so
an interrupted sweep resumes as with anomalib's runners (a finished row is skipped). A job whose worker died more
often than retried is written to ``failed/`` like any failed job.

Ray is an optional dependency of the harness: ``pip install "./benchmarks[ray]"``.

Example:
    >>> from anomalib_cbigan_bench.generator import SweepJobGenerator
    >>> runner = RayRunner(SweepJobGenerator("cpu", "results/sweeps/example", threads=2), raw_args={})
    >>> runner.resources()
    {'num_cpus': 2}
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from anomalib.pipelines.components.base import Runner
from anomalib.pipelines.types import GATHERED_RESULTS, PREV_STAGE_RESULT
from anomalib.utils.config import flatten_dict

from anomalib_cbigan.atomic_files import atomic_path

from .data_roots import expand_all
from .generator import SweepConfigError, SweepJobGenerator, grid_points, job_label, prepare_data
from .job import CHECKPOINTS, FAILED, ROWS, write_failure

RETRIES = 3  # a job whose worker process or node died is run again this many times (Ray's task retries)
# The local instance's shared-memory store holds only the files tasks send back (rows, scores, figures).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


def import_ray() -> Any:  # noqa: ANN401  # the module, imported where it is needed: an optional dependency
    """The ``ray`` module, or a :class:`SweepConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as error:
        msg = 'the Ray runner needs Ray: pip install "./benchmarks[ray]" (from the checkout\'s root)'
        raise SweepConfigError(msg) from error
    return ray


class RayRunner(Runner):
    """Run a sweep's unfinished jobs as Ray tasks; see the module docstring.

    Args:
        generator (SweepJobGenerator): The sweep's jobs (its ``threads``: the cores each CPU job asks for).
        raw_args (dict): The sweep's ``benchmark`` section before its data roots were expanded (each worker expands
            them from its own environment); its grid points are the generator's, in the same order.
        address (str | None): A running cluster's address (``ray start --head`` prints it; ``"auto"``: the one on
            this machine). ``None`` starts a local Ray instance for the sweep and stops it at the end.
    """

    def __init__(self, generator: SweepJobGenerator, raw_args: dict[str, Any], address: str | None = None) -> None:
        super().__init__(generator)
        self.raw_args = raw_args
        self.address = address
        # On a cluster the driver may not hold the data: each worker checks its own (a job without data fails).
        self.check_data = address is None

    def resources(self) -> dict[str, float]:
        """What each job's task asks Ray for: one GPU (and a core to feed it) for a CUDA job, else its cores."""
        if self.generator.accelerator == "cuda":
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_cpus": self.generator.threads or os.cpu_count() or 1}

    def run(self, args: dict, prev_stage_results: PREV_STAGE_RESULT = None) -> GATHERED_RESULTS:
        """Submit every unfinished job, save each one's files as its task ends; return the rows of this run."""
        del prev_stage_results  # a single-stage pipeline
        ray = import_ray()
        generator = self.generator
        containers = generator.plan(args, check_data=self.check_data)
        raw_containers = grid_points(self.raw_args)
        names = generator.job_ids(containers)
        pending: dict[Any, tuple[str, dict[str, Any], str]] = {}
        rows: list[dict[str, Any]] = []
        started = self._connect(ray)
        try:
            task = ray.remote(run_sweep_job).options(max_retries=RETRIES, retry_exceptions=False, **self.resources())
            shared_generator = ray.put(generator)  # stored once, not sent with every task
            for index, (container, raw, name) in enumerate(zip(containers, raw_containers, names, strict=True), 1):
                progress = f"[{index}/{len(containers)}] {job_label(container)} ({name})"
                if generator.is_finished(name):
                    print(f"{progress}: finished in an earlier run, skipped", flush=True)
                    continue
                pending[task.remote(shared_generator, raw, name)] = (name, flatten_dict(container), progress)
                print(f"{progress}: submitted", flush=True)
            while pending:
                (done,), _ = ray.wait(list(pending), num_returns=1)
                name, flat_cfg, progress = pending.pop(done)
                try:
                    files, error = ray.get(done)
                except ray.exceptions.RayError as lost:  # its worker or node died more often than retried
                    files, error = {}, f"{type(lost).__name__}: {lost}"
                self._save(name, files)
                if error is None:
                    rows.append(json.loads(files[f"{ROWS}/{name}.json"]))
                elif f"{FAILED}/{name}.txt" not in files:  # failed before the job could write its own record
                    write_failure(generator.output_dir, name, flat_cfg, error)
                print(f"{progress}: {'finished' if error is None else 'failed'}", flush=True)
        finally:
            if started:
                ray.shutdown()
        return generator.job_class.collect(rows)

    def _connect(self, ray: Any) -> bool:  # noqa: ANN401
        """Join the cluster at ``address``, or start a local instance; whether this runner started it."""
        if ray.is_initialized():
            return False
        try:
            if self.address is not None:
                ray.init(address=self.address)
            else:
                ray.init(address="local", include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        except Exception as error:
            where = f"the Ray cluster at {self.address!r}" if self.address is not None else "a local Ray instance"
            msg = f"could not start or join {where} ({type(error).__name__}: {error}); no job was submitted"
            raise SweepConfigError(msg) from error
        return True

    def _save(self, name: str, files: dict[str, bytes]) -> None:
        """Write a task's files into the sweep's folder, each whole, the row last (the mark of a finished job)."""
        output = self.generator.output_dir
        for relative in sorted(files, key=lambda path: path.startswith(f"{ROWS}/")):
            with atomic_path(output / relative) as tmp:
                tmp.write_bytes(files[relative])
        if f"{ROWS}/{name}.json" in files:
            (output / FAILED / f"{name}.txt").unlink(missing_ok=True)


def run_sweep_job(generator: SweepJobGenerator, raw_container: dict[str, Any], name: str) -> tuple[dict, str | None]:
    """The Ray task: one job on this worker; returns the files it wrote (``{relative path: bytes}``) and its error.

    The job runs in ``<temp>/anomalib-cbigan-sweep-jobs/<name>``, named by the job, so a run of it retried on the
    same node goes on from its checkpoint (``checkpoint_minutes``); the folder is removed once its files are read,
    but for a failed job's checkpoint.
    """
    work = Path(tempfile.gettempdir()) / "anomalib-cbigan-sweep-jobs" / name
    error = None
    try:
        container = expand_all(raw_container)  # this worker's data roots
        job = generator.build_job(container, name, output_dir=work)
        prepare_data(job.datamodule, container)
        # Ray gives the task its GPU as device 0 (CUDA_VISIBLE_DEVICES); a CPU job trains on one process.
        job.run(task_id=0)
    except Exception as failure:  # noqa: BLE001  # the job's result: reported by the driver, not retried
        error = f"{type(failure).__name__}: {failure}"
    written = [path for path in sorted(work.rglob("*")) if path.is_file()]
    files = {path.relative_to(work).as_posix(): path.read_bytes() for path in written
             if path.relative_to(work).parts[0] != CHECKPOINTS}  # fmt: skip
    if error is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        for relative in files:
            (work / relative).unlink()
    return files, error
