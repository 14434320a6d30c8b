"""Jobs of a sweep: anomalib's benchmark grid, built the way ``anomalib train`` builds its classes.

The grid is anomalib's (:func:`~anomalib.pipelines.components.utils.get_iterator_from_grid_dict`:
every key with a ``grid`` list multiplies the jobs). What differs from anomalib's generator:

* models and datamodules are built by jsonargparse, as ``anomalib train -c`` builds them, so nested
  ``class_path`` arguments (a ``pre_processor`` with a smaller ``Resize`` for GANomaly, an ``evaluator``,
  ``train_augmentations``) work, and a bad value is reported before any job starts;
* a ``trainer`` section (in ``benchmark`` or in one model's entry, which wins) sets ``Engine`` arguments
  such as ``max_epochs``; anomalib's own job passes none, so Lightning trains for 1000 epochs;
* an ``in_memory`` section (same places, same precedence; ``false`` in a model's entry opts it out) wraps
  the job's datamodule in :class:`~anomalib_cbigan.data.InMemoryDataModule` with those arguments
  (``batches_per_epoch``, ``image_size``): training images decoded once, epochs of any length;
* a ``data`` section in a model's entry (``{init_args: {...}}``) is merged over the sweep's ``data`` for that
  model's jobs: the CBiGAN texture protocol's training crops beside whole-image models in one sweep;
* ``chosen_by`` in a model's entry says how its settings were chosen (kept in the job's row as
  ``model.chosen_by``, shown by the report);
* a ``curve`` section (same places, same precedence: ``{unit: seconds, first: 30, factor: 2}``) scores validation
  and test at those points of the job's training (:class:`~anomalib_cbigan.training_curve.ValidationCurve`);
* ``checkpoint_minutes`` (same places, same precedence) makes a long job resumable: a checkpoint every that many
  minutes of training, from which a re-run goes on;
* ``validations`` (same places, same precedence: ``[perlin, mixture]``) scores the final weights on the synthetic
  validation split made with those kinds of anomalies too (the same held-out images; ``LocalMVTecAD`` data),
  so one sweep measures how well each kind ranks the test;
* ``seed`` in a model's entry wins over the sweep's: a later stage trains chosen candidates on more seeds;
* ``untrained: true`` in a model's entry makes a job that validates and tests the untrained networks (the
  floor a broken training would sit on), so any sweep can carry its own floor;
* a job whose row is already saved in the output folder is skipped (re-running resumes a sweep);
* the data of every job that will run is prepared (written or checked: a missing category or a truncated
  image is named) before the first job trains, in the main process, so parallel workers never build the
  same dataset at once;
* the job's seed is set before its model is built, so a job's initial weights do not depend on the
  jobs before it (which also makes a resumed sweep's jobs equal to an uninterrupted sweep's).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

from anomalib.data import AnomalibDataModule
from anomalib.models import AnomalibModule
from anomalib.pipelines.benchmark.generator import BenchmarkJobGenerator
from anomalib.pipelines.components.utils import get_iterator_from_grid_dict
from anomalib.pipelines.types import PREV_STAGE_RESULT
from anomalib.utils.config import flatten_dict
from jsonargparse import ArgumentParser
from lightning import seed_everything

from anomalib_cbigan.data import InMemoryDataModule

from .job import ROWS, SweepJob

logger = logging.getLogger(__name__)


# Sections of a model's entry that are the job's, not the model's constructor arguments.
JOB_SECTIONS = ("trainer", "in_memory", "untrained", "chosen_by", "data", "curve", "checkpoint_minutes", "validations")


class SweepConfigError(ValueError):
    """A sweep configuration that cannot be run; the message names the job and the problem."""


def job_id(flat_cfg: dict[str, Any]) -> str:
    """A short stable name for a job configuration (the same grid point gets the same id in every run).

    Example:
        >>> job_id({"seed": 0, "model.class_path": "Cbigan"}) == job_id({"model.class_path": "Cbigan", "seed": 0})
        True
    """
    text = json.dumps(flat_cfg, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]  # a name, not security


def job_label(container: dict[str, Any]) -> str:
    """``"Cbigan × brick × seed 0"``: what a person reads in progress lines."""
    model = str(container.get("model", {}).get("class_path", "?")).rsplit(".", 1)[-1]
    data = container.get("data", {})
    init_args = data.get("init_args", {})
    category = init_args.get("category", str(data.get("class_path", "?")).rsplit(".", 1)[-1])
    if init_args.get("standardize_brightness") is not None:
        category = f"{category} (brightness {init_args['standardize_brightness']})"
    return f"{model} × {category} × seed {container.get('seed', '?')}"


def _class_parser() -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(AnomalibModule, "model")
    parser.add_subclass_arguments(AnomalibDataModule, "data")
    return parser


class SweepJobGenerator(BenchmarkJobGenerator):
    """anomalib's benchmark job generator with the changes listed in this module's docstring.

    Args:
        accelerator (str): ``"cpu"`` or ``"cuda"``.
        output_dir (Path): The sweep's output folder (finished jobs are looked up there).
        threads (int | None): CPU threads per job. Defaults to ``None`` (torch's default).

    Example:
        >>> from anomalib_cbigan_bench import SweepJobGenerator
        >>> generator = SweepJobGenerator("cpu", output_dir="results/sweeps/example")
        >>> generator.job_class.__name__
        'SweepJob'
    """

    def __init__(self, accelerator: str, output_dir: Path | str, threads: int | None = None) -> None:
        super().__init__(accelerator)
        self.output_dir = Path(output_dir)
        self.threads = threads
        self._planned: tuple[str, list[dict[str, Any]]] | None = None  # (args as JSON, their grid points)

    @property
    def job_class(self) -> type:
        """:class:`~anomalib_cbigan_bench.job.SweepJob`."""
        return SweepJob

    def plan(self, args: dict[str, Any], *, check_data: bool = True) -> list[dict[str, Any]]:
        """Every grid point of ``args``; raises :class:`SweepConfigError` naming the first bad one.

        Each distinct model and datamodule configuration is built once here (and dropped), so a value
        the constructor refuses (``alpha: 3``) stops the sweep before its first job, not in the middle; with
        ``check_data``, the data of every unfinished job is prepared (datasets written, trees checked) too.
        """
        fingerprint = json.dumps([args, check_data], sort_keys=True, default=str)
        if self._planned is not None and self._planned[0] == fingerprint:  # checked once (Sweep.run), reused by the runner
            return self._planned[1]
        args = copy.deepcopy(args)  # building the classes must not change the caller's configuration
        if not args:
            msg = "The sweep configuration has no `benchmark` section: nothing to run."
            raise SweepConfigError(msg)
        for key in ("seed", "model", "data"):
            if key not in args:
                msg = f"The sweep configuration's `benchmark` section needs `{key}` (it has {sorted(args)})."
                raise SweepConfigError(msg)
        containers = grid_points(args)
        parser = _class_parser()
        built: set[str] = set()
        prepared: set[str] = set()
        for container, name in zip(containers, self.job_ids(containers), strict=True):
            _curve_args(container)  # a bad section stops the sweep here
            _validation_kinds(container)
            config = {**_class_config(container), "in_memory": _in_memory_args(container)}
            model_key = json.dumps(config["model"], sort_keys=True, default=str)
            data_key = json.dumps([config["data"], config["in_memory"]], sort_keys=True, default=str)
            unprepared = check_data and data_key not in prepared and not self.is_finished(name)
            if {model_key, data_key} <= built and not unprepared:
                continue
            classes = _build(parser, container)
            built |= {model_key, data_key}
            if unprepared:
                prepare_data(classes.data, container)
                prepared.add(data_key)
        self._planned = (fingerprint, containers)
        return containers

    def is_finished(self, name: str) -> bool:
        """Whether the job called ``name`` saved its row in an earlier run."""
        return (self.output_dir / ROWS / f"{name}.json").exists()

    def job_ids(self, containers: list[dict[str, Any]]) -> list[str]:
        """The names of the planned jobs (configuration, seed and accelerator)."""
        return [job_id({**flatten_dict(container), "accelerator": self.accelerator}) for container in containers]

    def generate_jobs(
        self,
        args: dict[str, Any],
        previous_stage_result: PREV_STAGE_RESULT,
    ) -> Generator[SweepJob, None, None]:
        """Yield the unfinished jobs of the grid, printing one progress line per grid point."""
        del previous_stage_result  # a single-stage pipeline
        containers = self.plan(args)
        for index, (container, name) in enumerate(zip(containers, self.job_ids(containers), strict=True), 1):
            progress = f"[{index}/{len(containers)}] {job_label(container)} ({name})"
            if self.is_finished(name):
                print(f"{progress}: finished in an earlier run, skipped", flush=True)
                continue
            job = self.build_job(container, name)  # its data was prepared by plan()
            print(f"{progress}: starting", flush=True)
            yield job

    def build_job(self, container: dict[str, Any], name: str, output_dir: Path | None = None) -> SweepJob:
        """The job of one grid point (of :meth:`plan`), called ``name``, saving into ``output_dir`` (default: the
        sweep's); raises :class:`SweepConfigError` naming the job if its model or data cannot be built."""
        # Seeded before the model is built, so its initial weights belong to the job's seed, not to whichever jobs
        # ran before it in this process (anomalib's generator builds them unseeded).
        seed_everything(container["seed"], verbose=False)
        classes = _build(_class_parser(), container)
        return SweepJob(
            accelerator=self.accelerator,
            model=classes.model,
            datamodule=classes.data,
            seed=container["seed"],
            flat_cfg=flatten_dict(container),
            trainer_args=_trainer_args(container),
            output_dir=self.output_dir if output_dir is None else output_dir,
            job_id=name,
            threads=self.threads,
            untrained=bool(container["model"].get("untrained", False)),
            curve=_curve_args(container),
            validations=_validation_kinds(container),
            checkpoint_minutes=container["model"].get("checkpoint_minutes", container.get("checkpoint_minutes")),
        )


def grid_points(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid points of a sweep's ``benchmark`` section (anomalib's grid), each with its model entry's overrides.

    Example:
        >>> points = grid_points({"seed": {"grid": [0, 1]}, "model": {"class_path": "Cbigan"}, "data": {}})
        >>> [point["seed"] for point in points]
        [0, 1]
    """
    return [with_model_overrides(container) for container in get_iterator_from_grid_dict(args)]


def with_model_overrides(container: dict[str, Any]) -> dict[str, Any]:
    """The grid point with its model entry's ``data`` section merged over the sweep's ``data`` and its ``seed``
    over the sweep's ``seed`` (the model's win), so a later stage can train one model on more seeds.

    Example:
        >>> model = {"class_path": "Cbigan", "seed": 1, "data": {"init_args": {"train_batch_size": 16}}}
        >>> point = {"seed": 0, "model": model,
        ...          "data": {"class_path": "LocalMVTecAD", "init_args": {"category": "grid", "train_batch_size": 8}}}
        >>> merged = with_model_overrides(point)
        >>> merged["data"]["init_args"], merged["seed"], sorted(merged["model"])
        ({'category': 'grid', 'train_batch_size': 16}, 1, ['class_path'])
    """
    own, own_seed = container["model"].get("data"), container["model"].get("seed")
    if own is None and own_seed is None:
        return container
    if own is not None and (not isinstance(own, dict) or set(own) - {"init_args"}):
        msg = f"Sweep job {job_label(container)}: a model's `data` section holds only `init_args`, got {own!r}"
        raise SweepConfigError(msg)
    if own_seed is not None and (not isinstance(own_seed, int) or isinstance(own_seed, bool)):
        msg = f"Sweep job {job_label(container)}: a model's `seed` is one whole number, got {own_seed!r}"
        raise SweepConfigError(msg)
    merged = copy.deepcopy(container)
    if own_seed is not None:
        merged["seed"] = merged["model"].pop("seed")
    if own is not None:
        merged["model"].pop("data")
        merged["data"].setdefault("init_args", {}).update(copy.deepcopy(own.get("init_args") or {}))
    return merged


def _build(parser: ArgumentParser, container: dict[str, Any]) -> Any:
    """The job's model and datamodule (``.model``, ``.data``, wrapped if ``in_memory``), or an error naming the job."""
    try:
        # A copy: parsing turns the class configs it finds in lists into objects in place, which would rename the job.
        classes = parser.instantiate_classes(parser.parse_object(copy.deepcopy(_class_config(container))))
        in_memory = _in_memory_args(container)
        if in_memory is not None:
            classes.data = InMemoryDataModule(classes.data, **in_memory)
        return classes
    except Exception as error:
        msg = f"Sweep job {job_label(container)}: invalid model or data configuration:\n{error}"
        raise SweepConfigError(msg) from error


def prepare_data(datamodule: AnomalibDataModule, container: dict[str, Any]) -> None:
    """Write or check the job's dataset (``prepare_data``), or raise an error naming the job."""
    try:
        datamodule.prepare_data()
    except Exception as error:
        msg = f"Sweep job {job_label(container)}: its data is not usable:\n{type(error).__name__}: {error}"
        raise SweepConfigError(msg) from error


def _class_config(container: dict[str, Any]) -> dict[str, Any]:
    """The ``model`` and ``data`` entries without the keys jsonargparse does not know (``trainer``)."""
    model = {key: value for key, value in container["model"].items() if key not in JOB_SECTIONS}
    return {"model": model, "data": container["data"]}


def _trainer_args(container: dict[str, Any]) -> dict[str, Any]:
    return {**container.get("trainer", {}), **container["model"].get("trainer", {})}


def _curve_args(container: dict[str, Any]) -> dict[str, Any] | None:
    """``ValidationCurve`` arguments for the job (the model's entry wins), or ``None`` for no curve."""
    section = container["model"].get("curve", container.get("curve"))
    if not section:
        return None
    if not isinstance(section, dict) or set(section) - {"unit", "first", "factor"}:
        msg = f"Sweep job {job_label(container)}: `curve` takes unit, first and factor, got {section!r}"
        raise SweepConfigError(msg)
    return dict(section)


def _validation_kinds(container: dict[str, Any]) -> list[str]:
    """The extra synthetic validation kinds the job scores (the model's entry wins); a bad list names the job."""
    from anomalib_cbigan.data import LocalMVTecAD

    kinds = container["model"].get("validations", container.get("validations")) or []
    known = LocalMVTecAD.SYNTHETIC_ANOMALIES
    if not isinstance(kinds, list) or set(map(str, kinds)) - set(known):
        msg = f"Sweep job {job_label(container)}: `validations` is a list of {list(known)}, got {kinds!r}"
        raise SweepConfigError(msg)
    return [str(kind) for kind in kinds]


def _in_memory_args(container: dict[str, Any]) -> dict[str, Any] | None:
    """``InMemoryDataModule`` arguments for the job (the model's entry wins), or ``None`` to read from files."""
    section = container["model"].get("in_memory", container.get("in_memory"))
    if section is None or section is False:
        return None
    return {} if section is True else dict(section)
