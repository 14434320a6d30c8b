"""One sweep job: anomalib's ``BenchmarkJob`` plus trainer arguments, inference timing and a saved row.

A finished job leaves its files under the sweep's output folder, each written whole and then
renamed into place: ``scores/<job_id>.csv`` (every test image's raw score and label, for ROC curves),
for models of this package ``figures/<job_id>.png`` (inputs, reconstructions, anomaly maps and masks of
a few test images), with a ``curve`` section ``curves/<job_id>.csv`` (validation and test AUROC at log-spaced
points of training: :class:`~anomalib_cbigan.training_curve.ValidationCurve`), and last ``rows/<job_id>.json``
(the results row). The row file is the mark of a
finished job: a re-run of the sweep skips every job that has one.

An *untrained* job (``untrained: true`` in its model's entry) validates and tests the networks as
initialised: the floor a broken training would sit on.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TextIO

import pandas as pd
import torch
from anomalib.data import AnomalibDataModule
from anomalib.engine import Engine
from anomalib.models import AnomalibModule
from anomalib.pipelines.benchmark.job import BenchmarkJob
from anomalib.utils.logging import LoggerRedirectError, hide_output
from lightning import Callback, LightningModule, Trainer, seed_everything
from torch.utils.data import DataLoader

from anomalib_cbigan.atomic_files import atomic_path
from anomalib_cbigan.metrics import auroc
from anomalib_cbigan.training_curve import ValidationCurve, score_loader, scoring

from .timing import processor

logger = logging.getLogger(__name__)

ROWS = "rows"
SCORES = "scores"
FAILED = "failed"
FIGURES = "figures"
CURVES = "curves"
CHECKPOINTS = "checkpoints"  # a long job's resume point; removed when the job's row is written


class TestImageTimer(Callback):
    """Time each test batch (pre-processing and forward pass) and keep every image's score and label."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.images = 0
        self.scores: list[dict[str, Any]] = []
        self._start = 0.0

    @staticmethod
    def _synchronize(pl_module: LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_test_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Start the clock."""
        del trainer, args
        self._synchronize(pl_module)
        self._start = time.perf_counter()

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        *args: Any,
    ) -> None:
        """Stop the clock; record the batch's scores."""
        del trainer, args
        self._synchronize(pl_module)
        self.seconds += time.perf_counter() - self._start
        self.images += len(batch.image)
        scores = outputs.pred_score.detach().flatten().cpu().tolist()
        labels = batch.gt_label.flatten().cpu().tolist() if batch.gt_label is not None else [None] * len(scores)
        paths = batch.image_path or [""] * len(scores)
        self.scores += [
            {"image_path": path, "gt_label": int(label) if label is not None else "", "pred_score": score}
            for path, label, score in zip(paths, labels, scores, strict=True)
        ]


class ValidationScores(Callback):
    """Each validation's image scores and pixel maps; the last validation's AUROCs go into the job's row.

    The sweep validates on what the datamodule's ``val_split_mode`` makes: with ``synthetic``, normal training
    images held out of the fit and synthetic anomalies made from them (anomalib's Perlin noise, or the painted
    defects of ``LocalMVTecAD(synthetic_anomalies="defects")``), so a sweep's settings can be chosen on
    ``val_image_AUROC_raw`` without looking at a test label.
    """

    PIXEL_THRESHOLDS = 200  # binned pixel curves: exact to 1/200, and the maps need not be kept

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.scores: list[float] = []
        self.labels: list[int] = []
        self._pixel_auroc: Any = None
        self._pixel_aupr: Any = None
        self._map_range: tuple[float, float] | None = None

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Forget the previous validation."""
        del trainer, pl_module
        self._reset()

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        *args: Any,
    ) -> None:
        """Keep the batch's raw scores and labels, and add its maps to the pixel curves."""
        del trainer, pl_module, args
        if outputs is None or getattr(outputs, "pred_score", None) is None or batch.gt_label is None:
            return
        self.scores += outputs.pred_score.detach().flatten().double().cpu().tolist()
        self.labels += batch.gt_label.flatten().int().cpu().tolist()
        maps, masks = getattr(outputs, "anomaly_map", None), getattr(outputs, "gt_mask", None)
        if maps is not None and masks is not None:
            self._add_maps(maps.detach().float().cpu(), masks.detach().cpu())

    def _add_maps(self, maps: torch.Tensor, masks: torch.Tensor) -> None:
        from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

        maps = maps.reshape(len(maps), -1, *maps.shape[-2:])[:, :1]
        masks = masks.reshape(len(masks), 1, *masks.shape[-2:]).float()
        if maps.shape[-2:] != masks.shape[-2:]:
            maps = torch.nn.functional.interpolate(maps, size=masks.shape[-2:], mode="bilinear", align_corners=False)
        if self._map_range is None:  # the first batch fixes the scale of the binned curves (raw maps are not in [0, 1])
            low, high = float(maps.min()), float(maps.max())
            self._map_range = (low, max(high - low, 1e-12))
            self._pixel_auroc = BinaryAUROC(thresholds=self.PIXEL_THRESHOLDS)
            self._pixel_aupr = BinaryAveragePrecision(thresholds=self.PIXEL_THRESHOLDS)
        low, spread = self._map_range
        scaled = ((maps - low) / spread).clamp(0, 1).flatten()
        targets = (masks > 0.5).int().flatten()
        with _plain_bincount():
            self._pixel_auroc.update(scaled, targets)
            self._pixel_aupr.update(scaled, targets)

    def metrics(self) -> dict[str, float]:
        """``val_image_AUROC_raw``, ``val_pixel_AUROC``, ``val_pixel_AUPR`` of the last validation (NaN where
        it had not both labels, or no maps), and ``val_images``."""
        nan = float("nan")
        values = {"val_images": len(self.scores), "val_image_AUROC_raw": auroc(self.labels, self.scores)}
        pixel_auroc = pixel_aupr = nan
        if self._pixel_auroc is not None and self._pixel_auroc.thresholds is not None:
            positives = bool((self._pixel_auroc.confmat[:, 1, :].sum(-1) > 0).all())  # some anomalous pixel
            if positives:
                pixel_auroc = float(self._pixel_auroc.compute())
                pixel_aupr = float(self._pixel_aupr.compute())
        return {**values, "val_pixel_AUROC": pixel_auroc, "val_pixel_AUPR": pixel_aupr}


class ValidatedStep(Callback):
    """The training step at which the fit last validated (-1: never)."""

    def __init__(self) -> None:
        self.step = -1

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Remember the step, if the validation is part of a fit."""
        del pl_module
        if trainer.training or trainer.state.fn == "fit":
            self.step = trainer.global_step


class ResumePoint(Callback):
    """Save the fit to ``path`` every ``seconds`` of training, written whole and then renamed into place.

    Lightning's ``ModelCheckpoint`` ignores its ``train_time_interval`` for models that optimise manually (ours,
    GANomaly), so the interval is kept here.
    """

    def __init__(self, path: Path, seconds: float) -> None:
        self.path = Path(path)
        self.seconds = seconds
        self._last = 0.0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the interval."""
        del trainer, pl_module
        self._last = time.monotonic()

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        """Save once the interval has passed."""
        del args
        if time.monotonic() - self._last >= self.seconds:
            with atomic_path(self.path) as tmp:
                trainer.save_checkpoint(tmp)
            self._last = time.monotonic()


def _write_atomically(path: Path, write: Callable[[TextIO], object]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        write(handle)


class SweepJob(BenchmarkJob):
    """Train and test one (model, data, seed, trainer arguments) combination; save its row.

    Args:
        accelerator (str): ``"cpu"`` or ``"cuda"``.
        model (AnomalibModule): The model to train.
        datamodule (AnomalibDataModule): Its data.
        seed (int): Seeded before the engine is built.
        flat_cfg (dict): The job's configuration with dotted keys (becomes part of the row).
        trainer_args (dict): Extra ``Engine``/Trainer arguments (``max_epochs``, ...).
        output_dir (Path): The sweep's output folder.
        job_id (str): The job's name in ``rows/`` and ``scores/``.
        threads (int | None): CPU threads for this job (so parallel CPU workers share the cores).
        untrained (bool): Validate and test without training.
        checkpoint_minutes (float | None): Save a checkpoint every that many minutes of training to
            ``checkpoints/<job_id>/last.ckpt``, and resume from it when the job is run again: a job longer than a
            session goes on where it stopped (its ``max_time`` budget and curve included). Removed when the job
            finishes.
        curve (dict | None): :class:`~anomalib_cbigan.training_curve.ValidationCurve` arguments (``unit``,
            ``first``, ``factor``): score validation and test at those points of training. The row then also
            holds the test AUROCs at the best validation point (``chosen_*``) and the best test AUROC over
            the points (``test_selected_*``: the official CBiGAN code's figure, reported, never chosen with).
        validations (Sequence[str]): Synthetic validation kinds (``LocalMVTecAD.SYNTHETIC_ANOMALIES``) the final
            weights are scored on too, each made on the same held-out images: ``val_<kind>_image_AUROC_raw`` and
            ``val_<kind>_pixel_AUROC`` in the row. Defaults to none.

    Example:
        >>> from anomalib_cbigan_bench.job import SweepJob
        >>> SweepJob.name  # the config section it reads, as anomalib's BenchmarkJob
        'benchmark'
    """

    def __init__(
        self,
        accelerator: str,
        model: AnomalibModule,
        datamodule: AnomalibDataModule,
        seed: int,
        flat_cfg: dict,
        *,
        trainer_args: dict[str, Any],
        output_dir: Path,
        job_id: str,
        threads: int | None = None,
        untrained: bool = False,
        curve: dict[str, Any] | None = None,
        checkpoint_minutes: float | None = None,
        validations: Sequence[str] = (),
    ) -> None:
        super().__init__(accelerator, model, datamodule, seed, flat_cfg)
        self.curve = dict(curve) if curve and not untrained else None
        self.checkpoint_minutes = checkpoint_minutes if not untrained else None
        self.validations = list(validations)
        self.trainer_args = trainer_args
        self.output_dir = Path(output_dir)
        self.job_id = job_id
        self.threads = threads
        self.untrained = untrained

    def run(self, task_id: int | None = None) -> dict[str, Any]:
        """Fit, test, write ``scores/<job_id>.csv`` then ``rows/<job_id>.json``; return the row.

        A failure is written to ``failed/<job_id>.txt`` (the job's configuration and the error)
        and raised again, so anomalib's runner logs it and goes on with the next job.
        """
        try:
            row = self._fit_and_test(task_id)
        except Exception as error:
            cause = error.__cause__ if isinstance(error, LoggerRedirectError) and error.__cause__ else error
            write_failure(self.output_dir, self.job_id, self.flat_cfg, f"{type(cause).__name__}: {cause}")
            raise
        (self.output_dir / FAILED / f"{self.job_id}.txt").unlink(missing_ok=True)
        return row

    def _fit_and_test(self, task_id: int | None) -> dict[str, Any]:
        devices: str | int | list[int] = "auto"
        if task_id is not None:
            # anomalib passes the worker index as a CUDA device index; a CPU worker is one process.
            devices = 1 if self.accelerator == "cpu" else [task_id]
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        timer, validated, validation = TestImageTimer(), ValidatedStep(), ValidationScores()
        callbacks: list[Callback] = [timer, validated, validation]
        curve = ValidationCurve(**self.curve, score_test=True) if self.curve else None
        callbacks += [curve] if curve is not None else []
        resume_dir = self.output_dir / CHECKPOINTS / self.job_id
        resume_from = resume_dir / "last.ckpt"
        if self.checkpoint_minutes:
            callbacks.append(ResumePoint(resume_from, seconds=60 * self.checkpoint_minutes))
        resumed = bool(self.checkpoint_minutes) and resume_from.is_file()
        job_start = time.time()
        with TemporaryDirectory() as work_dir:
            seed_everything(self.seed, verbose=False)
            engine = Engine(
                accelerator=self.accelerator,
                devices=devices,
                default_root_dir=work_dir,
                logger=False,
                callbacks=callbacks,
                **self.trainer_args,
            )
            fit_start = time.time()
            if self.untrained:
                # Validation only: anomalib's post-processor needs its statistics (without them its AUROC
                # squashes raw scores through a sigmoid and reports 0.5).
                hide_output(engine.validate)(self.model, self.datamodule, verbose=False)
                validated_after_stop = False
            else:
                if resumed:
                    print(f"{self.job_id}: resuming from {resume_from}", flush=True)
                hide_output(engine.fit)(self.model, self.datamodule, ckpt_path=resume_from if resumed else None)
                validated_after_stop = validated.step != engine.trainer.global_step
            if validated_after_stop:
                # A wall-clock budget (max_time) ends training mid-epoch, where Lightning does not validate:
                # validate the final weights, so the post-processor's normalisation and thresholds are theirs.
                hide_output(engine.validate)(self.model, self.datamodule, verbose=False)
            test_start = time.time()
            test_results = hide_output(engine.test)(self.model, self.datamodule, verbose=False)
            test_end = time.time()
            other_validations = self._score_validations()
            self._save_figure()  # after the clock: a by-product, not the test's cost
        job_end = time.time()
        row = {
            "job_id": self.job_id,
            "accelerator": self.accelerator,
            "worker": task_id if task_id is not None else 0,
            "job_duration": job_end - job_start,
            "fit_duration": test_start - fit_start,
            "test_duration": test_end - test_start,
            "inference_ms_per_image": 1000 * timer.seconds / max(timer.images, 1),
            "test_images": timer.images,
            "validated_after_stop": validated_after_stop,
            "resumed": resumed,
            "trained_steps": 0 if self.untrained else int(engine.trainer.global_step),
            "processor": processor(),
            **self.flat_cfg,
            **test_results[0],
            "image_AUROC_raw": _raw_auroc(timer.scores),
            **validation.metrics(),
            **other_validations,
            **(self._save_curve(curve) if curve is not None else {}),
        }
        self._save_scores(timer.scores)
        _write_atomically(self.output_dir / ROWS / f"{self.job_id}.json", lambda f: json.dump(row, f, default=str))
        shutil.rmtree(resume_dir, ignore_errors=True)
        print(f"finished {self.job_id}: {_summary(row)}", flush=True)  # progress for the user
        return row

    def _score_validations(self) -> dict[str, float]:
        """The final weights' raw image and pixel AUROC on each extra synthetic validation kind."""
        data = getattr(self.datamodule, "datamodule", self.datamodule)  # InMemoryDataModule wraps the files' module
        if self.validations and not callable(getattr(data, "synthetic_validation", None)):
            msg = f"`validations` needs LocalMVTecAD data with val_split_mode synthetic, not {type(data).__name__}"
            raise TypeError(msg)
        columns = {}
        for kind in self.validations:
            dataset = data.synthetic_validation(kind)
            loader = DataLoader(dataset, batch_size=data.eval_batch_size, collate_fn=dataset.collate_fn)
            with scoring(self.model):
                image_auroc, pixel_auroc = score_loader(self.model, loader)
            columns |= {f"val_{kind}_image_AUROC_raw": image_auroc, f"val_{kind}_pixel_AUROC": pixel_auroc}
        return columns

    def _save_figure(self) -> None:
        """``figures/<job_id>.png`` for models that reconstruct (this package's); a failure is printed, not raised."""
        if not callable(getattr(self.model.model, "reconstruct", None)):
            return
        from anomalib_cbigan.reports import save_reconstruction_figure

        try:
            with atomic_path(self.output_dir / FIGURES / f"{self.job_id}.png") as tmp:
                save_reconstruction_figure(self.model, self.datamodule, tmp)
        except Exception as error:  # noqa: BLE001  # a figure is a by-product: the job's metrics stand without it
            print(f"no figure for {self.job_id}: {type(error).__name__}: {error}", flush=True)

    def _save_curve(self, curve: ValidationCurve) -> dict[str, Any]:
        """Write ``curves/<job_id>.csv``; return the row's curve columns (see the class's ``curve`` argument)."""
        points = pd.DataFrame(curve.rows())
        _write_atomically(self.output_dir / CURVES / f"{self.job_id}.csv", lambda f: points.to_csv(f, index=False))
        return curve_summary(points)

    def _save_scores(self, scores: list[dict[str, Any]]) -> None:
        def write(handle: Any) -> None:
            writer = csv.DictWriter(handle, fieldnames=["image_path", "gt_label", "pred_score"])
            writer.writeheader()
            writer.writerows(scores)

        _write_atomically(self.output_dir / SCORES / f"{self.job_id}.csv", write)

    @staticmethod
    def collect(results: list[dict[str, Any]]) -> pd.DataFrame:
        """Rows to a frame; unlike anomalib's, rows may differ in keys (models differ in arguments) or be none."""
        return pd.DataFrame(results)

    @staticmethod
    def save(result: pd.DataFrame) -> None:
        """Nothing to do: each job saved its row; ``Sweep.run`` writes the rows of every run to one file."""
        del result


def curve_summary(points: pd.DataFrame) -> dict[str, Any]:
    """A curve's row columns: ``chosen_*`` at its best validation point (the later of ties) and ``test_selected_*``
    at its best test point (the official CBiGAN code's test-selected figure), each with its updates and seconds.

    Example:
        >>> points = pd.DataFrame({"seconds": [30.0, 60.0], "updates": [10, 20], "val_image_AUROC": [0.7, 0.6],
        ...                        "test_image_AUROC": [0.8, 0.9], "val_pixel_AUROC": [0.5, 0.5],
        ...                        "test_pixel_AUROC": [0.6, 0.7]})
        >>> summary = curve_summary(points)
        >>> summary["chosen_image_AUROC_raw"], summary["test_selected_image_AUROC_raw"], summary["curve_points"]
        (0.8, 0.9, 2)
    """
    summary: dict[str, Any] = {"curve_points": len(points)}
    for prefix, column in (("chosen", "val_image_AUROC"), ("test_selected", "test_image_AUROC")):
        values = points[column]
        if values.notna().any():
            best = points.index[values == values.max()][-1]  # ties: the later point
            at = points.loc[best]
            summary |= {f"{prefix}_image_AUROC_raw": float(at["test_image_AUROC"]),
                        f"{prefix}_pixel_AUROC": float(at["test_pixel_AUROC"]),
                        f"{prefix}_val_image_AUROC_raw": float(at["val_image_AUROC"]),
                        f"{prefix}_updates": int(at["updates"]), f"{prefix}_seconds": float(at["seconds"])}  # fmt: skip
    return summary


def _summary(row: dict[str, Any]) -> str:
    metrics = ", ".join(f"{key} {float(value):.3f}" for key, value in row.items()
                        if key.endswith(("_AUROC", "val_image_AUROC_raw"))
                        and not key.startswith(("chosen_", "test_selected_")))  # fmt: skip
    if "chosen_image_AUROC_raw" in row:
        metrics += (f"; curve: test {row['chosen_image_AUROC_raw']:.3f} at the best validation point, "
                    f"{row['test_selected_image_AUROC_raw']:.3f} test-selected")  # fmt: skip
    return f"{metrics}; fit {row['fit_duration']:.0f} s, {row['inference_ms_per_image']:.1f} ms/image"


def _raw_auroc(scores: list[dict[str, Any]]) -> float:
    """AUROC of the raw test scores (anomalib's table AUROC is computed after min-max normalisation and
    clamping, which ties the extremes); NaN without both labels, or where an image had none."""
    labels = [row["gt_label"] for row in scores]
    return float("nan") if "" in labels else auroc(labels, [row["pred_score"] for row in scores])


@contextmanager
def _plain_bincount() -> Iterator[None]:
    """Deterministic algorithms off for a binned-curve update, restored after.

    Under deterministic algorithms (a trainer's ``deterministic=True``, or a seeded test) torchmetrics counts a
    batch of under 50k pixels with a dense pixels x (4 x thresholds) mesh instead of ``torch.bincount``, whose
    memory grows with their product until the process is killed. The counts are integers, the same either way.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=warn_only)


def write_failure(output_dir: Path, job_id: str, flat_cfg: dict[str, Any], error: str) -> None:
    """``failed/<job_id>.txt``: the job's configuration, then ``error`` (``"Type: message"``) as its last line, which
    the sweep prints at its end; and the same line now."""
    text = f"{json.dumps(flat_cfg, default=str)}\n{error}\n"
    _write_atomically(Path(output_dir) / FAILED / f"{job_id}.txt", lambda f: f.write(text))
    print(f"FAILED {job_id}: {error}", flush=True)


def read_failure(path: Path) -> tuple[dict[str, Any], str] | None:
    """A ``failed/<job_id>.txt`` that :func:`write_failure` wrote: the job's configuration and its error line;
    ``None`` for a file not in that form."""
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2:  # noqa: PLR2004 - the configuration, then the error
        return None
    try:
        config = json.loads(lines[0])
    except json.JSONDecodeError:
        return None
    return (config, lines[-1]) if isinstance(config, dict) else None


def finished_rows(output_dir: Path, order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every finished job's row under ``output_dir``: the jobs named in ``order`` first, in that order, then the
    others oldest first (a checkout gives every file the same age, so only the plan's order survives a clone)."""
    paths = sorted((Path(output_dir) / ROWS).glob("*.json"), key=lambda path: path.stat().st_mtime)
    rank = {name: index for index, name in enumerate(order)}
    paths.sort(key=lambda path: rank.get(path.stem, len(rank)))  # stable: the unplanned keep their age order
    return [json.loads(path.read_text()) for path in paths]
