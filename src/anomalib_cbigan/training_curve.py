"""Validation AUROC along a training run, at log-spaced points, and the weights chosen on it.

GANs do not converge to a point: their detection quality rises, wanders and sometimes falls while the losses say
little. :class:`ValidationCurve` scores the validation split (held-out normal training images plus synthetic
anomalies, with ``val_split_mode: synthetic``: no test image) at points spaced by a constant factor in training
seconds or in updates, logs the AUROCs and a grid of reconstructions to the Trainer's loggers, keeps the weights of
the best validation point and, with ``restore_best``, puts them back when the fit ends and saves them as
``validation_chosen.ckpt`` beside the Trainer's checkpoint: the checkpoint chosen on validation, never on the test
set. Time spent scoring is not training time: a ``max_time`` budget is extended
by it.

``score_test`` also scores the test set at each point. That is for benchmarks only (the official CBiGAN code
reports the best test AUROC over its training, a test-selected figure); the weights are never chosen with it.

Example:
    >>> from anomalib_cbigan.training_curve import ValidationCurve
    >>> curve = ValidationCurve(unit="updates", first=100, factor=2)
    >>> [curve.point(k) for k in range(4)]
    [100.0, 200.0, 400.0, 800.0]
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.trainer.states import RunningStage

from anomalib_cbigan.metrics import auroc
from anomalib_cbigan.models.gan_module import restore_rng_states, rng_states

logger = logging.getLogger(__name__)

UNITS = ("seconds", "updates")
CHOSEN_CHECKPOINT = "validation_chosen.ckpt"
VALIDATION, TEST = "val", "test"


@dataclass
class CurvePoint:
    """One scoring of the model during training.

    ``seconds``: training seconds before it (scoring excluded); ``updates``: steps of the model's first optimiser
    (this package's models: E/G updates); ``steps``: Lightning's global step; ``final``: the point at the end of
    the fit. AUROCs are NaN where a subset was not scored or has one label only.
    """

    seconds: float
    updates: int
    steps: int
    final: bool = False
    val_image_AUROC: float = math.nan
    val_pixel_AUROC: float = math.nan
    test_image_AUROC: float = math.nan
    test_pixel_AUROC: float = math.nan
    scoring_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        """A flat dict (for a CSV)."""
        row = asdict(self)
        return {**{key: value for key, value in row.items() if key != "extra"}, **row["extra"]}


def optimizer_updates(pl_module: LightningModule) -> int:
    """Steps taken by ``pl_module``'s first optimiser (Adam and the like count them per parameter); 0 before any.

    The models of this package list E and G's optimiser first, so this counts E/G updates, the unit the papers'
    schedules are written in.
    """
    optimizers = pl_module.optimizers(use_pl_optimizer=False) if pl_module._trainer is not None else []
    optimizers = optimizers if isinstance(optimizers, list | tuple) else [optimizers]
    if not optimizers:
        return 0
    for state in optimizers[0].state.values():
        if "step" in state:
            return int(state["step"])
    return 0


@contextmanager
def scoring(pl_module: LightningModule) -> Iterator[None]:
    """Eval mode and current score statistics (FCBiGAN's z-scores follow its networks) inside; the training mode
    and the random generators' states (a loader's iterator draws a seed) restored after, so training goes on as if
    nothing had been scored."""
    states, was_training = rng_states(), pl_module.training
    pl_module.eval()
    try:
        refresh = getattr(pl_module, "refresh_score_statistics", None)
        if callable(refresh):
            refresh()
        yield
    finally:
        pl_module.train(was_training)
        restore_rng_states(states)


def predicted_batches(pl_module: LightningModule, batches: Iterable[Any]) -> Iterator[Any]:
    """Each batch pre-processed as in validation (images and masks), with ``pl_module.model``'s predictions
    (raw scores and maps, before the post-processor): what ``validation_step`` returns. Run under ``no_grad``."""
    transform = getattr(getattr(pl_module, "pre_processor", None), "transform", None)
    for batch in batches:
        images, masks = batch.image, getattr(batch, "gt_mask", None)
        if transform is not None:
            images, masks = transform(images, masks)
        predictions = pl_module.model(images.to(pl_module.device))
        yield batch.update(image=images, gt_mask=masks, **predictions._asdict())


@torch.no_grad()
def score_loader(pl_module: LightningModule, batches: Iterable[Any]) -> tuple[float, float]:
    """Image and pixel AUROC of the raw scores and maps of ``pl_module.model`` (eval mode) over ``batches``.

    Images and masks go through the model's pre-processor, as in validation; maps are compared with the masks at
    the masks' size. Pixel AUROC is NaN where the batches have no masks or no anomalous pixel.
    """
    scores, labels, maps, masks = [], [], [], []
    for batch in predicted_batches(pl_module, batches):
        scores.append(batch.pred_score.detach().flatten().double().cpu())
        labels.append(torch.as_tensor(batch.gt_label).flatten().int().cpu())
        anomaly_map, gt_masks = getattr(batch, "anomaly_map", None), getattr(batch, "gt_mask", None)
        if anomaly_map is not None and gt_masks is not None:
            count = len(batch.pred_score.flatten())
            anomaly_map = anomaly_map.detach().float().cpu().reshape(count, -1, *anomaly_map.shape[-2:])[:, :1]
            gt_masks = torch.as_tensor(gt_masks).cpu().reshape(count, 1, *gt_masks.shape[-2:])
            if anomaly_map.shape[-2:] != gt_masks.shape[-2:]:
                anomaly_map = torch.nn.functional.interpolate(anomaly_map, size=gt_masks.shape[-2:], mode="bilinear")
            maps.append(anomaly_map.flatten())
            masks.append((gt_masks > 0.5).flatten().int())  # noqa: PLR2004
    if not scores:
        return math.nan, math.nan
    image_auroc = auroc(torch.cat(labels), torch.cat(scores))
    pixel_auroc = math.nan
    if maps:
        from torchmetrics.functional.classification import binary_auroc

        targets = torch.cat(masks)
        if 0 < int(targets.sum()) < len(targets):
            pixel_auroc = float(binary_auroc(torch.cat(maps), targets))
    return image_auroc, pixel_auroc


@torch.no_grad()
def fit_post_processor(trainer: Trainer, pl_module: LightningModule, batches: Iterable[Any]) -> bool:
    """Give anomalib's post-processor the normalisation and thresholds of the current weights on ``batches`` (the
    validation split), as a validation epoch does; ``False`` where the model has no such post-processor."""
    post_processor = getattr(pl_module, "post_processor", None)
    hooks = ("on_validation_batch_end", "on_validation_epoch_end")
    if not all(callable(getattr(post_processor, hook, None)) for hook in hooks):
        return False
    for batch in predicted_batches(pl_module, batches):
        post_processor.on_validation_batch_end(trainer, pl_module, batch)
    post_processor.on_validation_epoch_end(trainer, pl_module)
    return True


class ValidationCurve(Callback):
    """Score the validation split (and, for benchmarks, the test set) at log-spaced points of training.

    Points fall at ``first``, ``first * factor``, ``first * factor**2``, ... training seconds or updates (steps
    of the first optimiser: this package's models' E/G updates), and once at the end of the fit. Each point's
    ``val/image_AUROC_raw`` and ``val/pixel_AUROC`` (raw scores, exact; ``test/...`` with ``score_test``) go to
    every logger of the Trainer, at the step of the point's updates, with a grid of validation images and their
    reconstructions for models that reconstruct (loggers with ``experiment.add_image``, such as TensorBoard).
    Scoring runs with the models in eval mode and the random generators saved and restored, so a run with the
    callback trains exactly as one without; its time is added to a ``max_time`` budget.

    Args:
        unit (str): ``"seconds"`` (training seconds) or ``"updates"``. Defaults to ``"seconds"``.
        first (float): The first point. Defaults to ``30``.
        factor (float): Ratio of one point to the previous, > 1. Defaults to ``2``.
        restore_best (bool): Load the weights of the best validation point when the fit ends (ties: the later
            point), fit anomalib's post-processor (normalisation, thresholds) to them on the validation split, so
            the test and an export that follow use them, and save them as ``validation_chosen.ckpt`` in
            the checkpoint callback's folder (anomalib's: ``weights/lightning/``; the last weights stay in
            ``model.ckpt``). Defaults to ``False``: the last weights.
        score_test (bool): Also score the test set at each point (benchmarks: never used to choose).
            Defaults to ``False``.
        image_dir (str | Path | None): Also save each point's reconstruction grid there as a PNG. Defaults to
            ``None``.

    Example:
        >>> from anomalib.engine import Engine
        >>> from anomalib_cbigan.training_curve import ValidationCurve
        >>> curve = ValidationCurve(first=30, factor=2, restore_best=True)
        >>> engine = Engine(max_time="00:00:10:00", callbacks=[curve])  # doctest: +SKIP
        >>> engine.fit(model, datamodule=datamodule)  # doctest: +SKIP
        >>> curve.best.val_image_AUROC, curve.best.updates  # doctest: +SKIP
    """

    def __init__(
        self,
        unit: str = "seconds",
        first: float = 30.0,
        factor: float = 2.0,
        *,
        restore_best: bool = False,
        score_test: bool = False,
        image_dir: str | Path | None = None,
    ) -> None:
        if unit not in UNITS:
            msg = f"unit must be one of {UNITS}, got {unit!r}"
            raise ValueError(msg)
        if not first > 0 or not factor > 1:
            msg = f"points need first > 0 and factor > 1, got first={first}, factor={factor}"
            raise ValueError(msg)
        self.unit = unit
        self.first = float(first)
        self.factor = float(factor)
        self.restore_best = restore_best
        self.score_test = score_test
        self.image_dir = Path(image_dir) if image_dir is not None else None
        self.points: list[CurvePoint] = []
        self.best: CurvePoint | None = None
        self.chosen_checkpoint: Path | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self._next = 0
        self._train_start = 0.0
        self._scoring = 0.0
        self._resumed_seconds: float | None = None

    def point(self, index: int) -> float:
        """Where the ``index``-th point falls, in ``unit``."""
        return self.first * self.factor**index

    def training_seconds(self) -> float:
        """Seconds since the fit's training started, scoring excluded."""
        return time.monotonic() - self._train_start - self._scoring

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the clock; forget an earlier fit's points, unless this fit resumes from a checkpoint that held
        them (the clock then goes on from the checkpoint's training seconds)."""
        del trainer, pl_module
        if self._resumed_seconds is None:
            self.points, self.best, self._next = [], None, 0
        self._best_state = None  # a resumed fit keeps its best point, not that point's weights
        self._train_start, self._scoring = time.monotonic() - (self._resumed_seconds or 0.0), 0.0
        self._resumed_seconds = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Score when the run has passed the next point."""
        del args
        position = self.training_seconds() if self.unit == "seconds" else optimizer_updates(pl_module)
        if position < self.point(self._next):
            return
        while self.point(self._next) <= position:  # a slow batch may pass several points: score once
            self._next += 1
        self._score(trainer, pl_module, final=False)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Score the final weights; restore the best validation point's if asked."""
        if not self.points or self.points[-1].updates != optimizer_updates(pl_module):
            self._score(trainer, pl_module, final=True)
        else:
            self.points[-1].final = True
        if self.restore_best and self._best_state is None and self.best is not None:
            logger.warning("The best validation point (%d updates) came before the checkpoint this fit resumed from, "
                           "and its weights were not kept: the last weights stay", self.best.updates)  # fmt: skip
        if self.restore_best and self._best_state is not None:
            if self.best is not self.points[-1]:
                pl_module.load_state_dict(self._best_state)
            self._refit_post_processor(trainer, pl_module)
            self._save_chosen(trainer)
            logger.info("Weights of the best validation point kept (%d updates, val image AUROC %.3f)",
                        self.best.updates, self.best.val_image_AUROC)  # fmt: skip

    @staticmethod
    def _refit_post_processor(trainer: Trainer, pl_module: LightningModule) -> None:
        """The restored weights' normalisation and thresholds (a validation epoch before the restore, or none at
        all where ``max_time`` stopped mid-epoch, would leave the test others)."""
        with scoring(pl_module):
            fit_post_processor(trainer, pl_module, trainer.datamodule.val_dataloader())

    def _save_chosen(self, trainer: Trainer) -> None:
        """Write the chosen weights as ``validation_chosen.ckpt`` beside the checkpoint callback's (the last
        weights' checkpoint stays what it is, so a resumed fit continues from where training stopped)."""
        dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
        if dirpath is None:
            return
        path = Path(dirpath) / CHOSEN_CHECKPOINT
        trainer.save_checkpoint(path)
        self.chosen_checkpoint = path
        logger.info("Checkpoint chosen on validation: %s", path)

    def _score(self, trainer: Trainer, pl_module: LightningModule, *, final: bool) -> None:
        start = time.monotonic()
        point = CurvePoint(seconds=self.training_seconds(), updates=optimizer_updates(pl_module),
                           steps=int(trainer.global_step), final=final)  # fmt: skip
        with scoring(pl_module):
            datamodule = trainer.datamodule
            point.val_image_AUROC, point.val_pixel_AUROC = score_loader(pl_module, datamodule.val_dataloader())
            if self.score_test:
                point.test_image_AUROC, point.test_pixel_AUROC = score_loader(pl_module, datamodule.test_dataloader())
            self._log_images(trainer, pl_module, datamodule, point)
        point.scoring_seconds = time.monotonic() - start
        self.points.append(point)
        self._log(trainer, point)
        if self.best is None or not point.val_image_AUROC < self.best.val_image_AUROC:  # NaN never wins
            if self.best is None or not math.isnan(point.val_image_AUROC):
                self.best = point
                if self.restore_best:
                    self._best_state = {key: value.detach().cpu().clone()
                                        for key, value in pl_module.state_dict().items()}  # fmt: skip
        self._scoring += point.scoring_seconds
        _extend_time_budget(trainer, point.scoring_seconds)

    @staticmethod
    def _log(trainer: Trainer, point: CurvePoint) -> None:
        metrics = {"val/image_AUROC_raw": point.val_image_AUROC, "val/pixel_AUROC": point.val_pixel_AUROC,
                   "train/seconds": point.seconds}  # fmt: skip
        if not math.isnan(point.test_image_AUROC):
            metrics |= {"test/image_AUROC_raw": point.test_image_AUROC, "test/pixel_AUROC": point.test_pixel_AUROC}
        metrics = {key: value for key, value in metrics.items() if not math.isnan(value)}
        for logger_ in trainer.loggers:
            logger_.log_metrics(metrics, step=point.updates)

    def _log_images(self, trainer: Trainer, pl_module: LightningModule, datamodule: Any, point: CurvePoint) -> None:
        """Validation inputs over their reconstructions, for models that reconstruct and loggers that take images."""
        takes_images = [logger_ for logger_ in trainer.loggers
                        if callable(getattr(getattr(logger_, "experiment", None), "add_image", None))]  # fmt: skip
        if not callable(getattr(pl_module.model, "reconstruct", None)) or (not takes_images and self.image_dir is None):
            return
        grid = reconstruction_grid(pl_module, next(iter(datamodule.val_dataloader())))
        for logger_ in takes_images:
            logger_.experiment.add_image("val/reconstructions", grid, global_step=point.updates)
        if self.image_dir is not None:
            from torchvision.utils import save_image

            from anomalib_cbigan.atomic_files import atomic_path

            with atomic_path(self.image_dir / f"reconstructions_{point.updates:08d}.png") as tmp:
                save_image(grid, tmp, format="png")

    def rows(self) -> list[dict[str, Any]]:
        """The points as flat dicts, in order (for a CSV)."""
        return [point.as_row() for point in self.points]

    def state_dict(self) -> dict[str, Any]:
        """The points so far, the next point and the training seconds, so a fit resumed from a checkpoint goes on
        with the same curve and clock."""
        seconds = self.training_seconds() if self._train_start else 0.0
        best = self.points.index(self.best) if self.best in self.points else None
        return {"points": [asdict(point) for point in self.points], "next": self._next, "seconds": seconds,
                "best": best}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (Lightning calls it before ``on_train_start`` when a fit resumes)."""
        self.points = [CurvePoint(**point) for point in state_dict.get("points", [])]
        self._next = int(state_dict.get("next", 0))
        best = state_dict.get("best")
        self.best = self.points[best] if best is not None else None
        self._resumed_seconds = float(state_dict.get("seconds", 0.0))


def reconstruction_grid(pl_module: LightningModule, batch: Any, images: int = 8) -> torch.Tensor:
    """A (3, H, W) grid in [0, 1]: up to ``images`` pre-processed inputs of ``batch`` over their reconstructions."""
    from torchvision.utils import make_grid

    from anomalib_cbigan.reports import reconstruct

    transform = getattr(getattr(pl_module, "pre_processor", None), "transform", None)
    inputs = batch.image[:images]
    if transform is not None:
        inputs = transform(inputs)
    inputs = inputs.to(pl_module.device)
    with torch.no_grad():
        outputs = reconstruct(pl_module.model, inputs)
    pairs = torch.cat([inputs, outputs]).float().cpu()
    pairs = ((pairs + 1) / 2).clamp(0, 1)  # the generators' tanh range
    if pairs.shape[1] == 1:
        pairs = pairs.expand(-1, 3, -1, -1)
    return make_grid(pairs, nrow=len(inputs), padding=2, pad_value=1.0)


def _extend_time_budget(trainer: Trainer, seconds: float) -> None:
    """Give Lightning's ``max_time`` timer back the seconds spent scoring (they are not training)."""
    for callback in trainer.callbacks:
        if isinstance(callback, Timer):
            started = callback._start_time.get(RunningStage.TRAINING)  # noqa: SLF001  # no public setter
            if started is not None:
                callback._start_time[RunningStage.TRAINING] = started + seconds  # noqa: SLF001


