"""A shortcut check: how well an image's brightness alone scores a dataset, with nothing learnt about defects.

``MeanIntensity`` is an anomalib model with no weights: its score is an image's mean grey level (``mode="mean"``)
or that level's distance from the training images' mean (``mode="distance"``, the only thing it learns), and its
map the same per pixel. In a sweep it sits beside the real models; where it scores far from 0.5 the report
flags the dataset: a detector there may be reading brightness rather than defects, and the comparison should
also be run with ``LocalMVTecAD(standardize_brightness=...)``.

Example:
    >>> import torch
    >>> from anomalib_cbigan_bench.shortcut import MeanIntensityModel
    >>> model = MeanIntensityModel("distance")
    >>> model.observe(torch.full((2, 3, 4, 4), 0.5))
    >>> model.eval()(torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 0.8)])).pred_score
    tensor([0.0000, 0.3000])
"""

from __future__ import annotations

from typing import Any

import torch
from anomalib import LearningType
from anomalib.data import Batch, InferenceBatch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import nn

from anomalib_cbigan.metrics import default_evaluator

MODES = ("mean", "distance")


class MeanIntensityModel(nn.Module):
    """Scores an image by its mean grey level, or by that level's distance from the training images' mean.

    Args:
        mode (str): ``"mean"`` or ``"distance"``.
    """

    def __init__(self, mode: str = "distance") -> None:
        super().__init__()
        if mode not in MODES:
            msg = f"MeanIntensity mode must be one of {MODES}, got {mode!r}"
            raise ValueError(msg)
        self.mode = mode
        self.register_buffer("intensity_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))

    def observe(self, images: torch.Tensor) -> None:
        """Add training images (B, C, H, W) to the training mean."""
        self.intensity_sum += images.double().mean(dim=(1, 2, 3)).sum()
        self.images_seen += len(images)

    @property
    def training_mean(self) -> float:
        """The training images' mean grey level (NaN before any was observed)."""
        return float(self.intensity_sum / self.images_seen) if int(self.images_seen) else float("nan")

    def forward(self, images: torch.Tensor) -> InferenceBatch:
        """Score and map of each image (B, C, H, W)."""
        grey = images.float().mean(dim=1, keepdim=True)
        if self.mode == "distance":
            if not int(self.images_seen):
                msg = "MeanIntensity(mode='distance') has seen no training image: fit it first"
                raise RuntimeError(msg)
            grey = (grey - self.training_mean).abs()
            score = (images.float().mean(dim=(1, 2, 3)) - self.training_mean).abs()
        else:
            score = grey.mean(dim=(1, 2, 3))
        return InferenceBatch(pred_score=score, anomaly_map=grey)


class MeanIntensity(AnomalibModule):
    """The brightness shortcut as an anomalib model: one pass over the training images, no weights.

    Args:
        mode (str): ``"mean"`` (the image's mean grey level) or ``"distance"`` (its distance from the training
            images' mean). Defaults to ``"distance"``.
        post_processor (PostProcessor | bool): Defaults to ``True``.
        evaluator (Evaluator | bool): Defaults to ``True`` (the package's metrics).

    Example:
        >>> from anomalib_cbigan_bench.shortcut import MeanIntensity
        >>> MeanIntensity(mode="mean").model.mode
        'mean'
    """

    def __init__(
        self,
        mode: str = "distance",
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
    ) -> None:
        super().__init__(pre_processor=False, post_processor=post_processor, evaluator=evaluator, visualizer=False)
        self.model = MeanIntensityModel(mode)
        self.automatic_optimization = False

    @staticmethod
    def configure_optimizers() -> None:
        """Nothing to optimise."""
        return

    def training_step(self, batch: Batch, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Add the batch to the training mean."""
        del args, kwargs
        self.model.observe(batch.image)

    def validation_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:  # noqa: ANN401
        """Score the batch."""
        del args, kwargs
        return batch.update(**self.model(batch.image)._asdict())

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """The package's metrics, as every model of a sweep reports."""
        return default_evaluator()

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """One pass over the training images."""
        return {"max_epochs": 1, "num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        """Normal training images only."""
        return LearningType.ONE_CLASS
