"""What every GAN model of this package does the same way in Lightning, as a mixin for ``AnomalibModule`` classes.

A mixin, not an ``AnomalibModule`` subclass, so that anomalib's CLI and ``get_model`` (which
list ``AnomalibModule`` subclasses) see only the real models. Each model lists it before
``AnomalibModule``: ``class Cbigan(OneClassGanMixin, AnomalibModule)``.

Example:
    >>> from anomalib_cbigan import Cbigan, Fcbigan
    >>> from anomalib_cbigan.models.gan_module import OneClassGanMixin
    >>> issubclass(Cbigan, OneClassGanMixin) and issubclass(Fcbigan, OneClassGanMixin)
    True
"""

from __future__ import annotations

import logging
from typing import Any

from anomalib import LearningType
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from lightning.pytorch.utilities.types import STEP_OUTPUT

from anomalib_cbigan.metrics import evaluator_with_balanced_accuracy

logger = logging.getLogger(__name__)


class OneClassGanMixin:
    """``batch_size`` hyper-parameter, validation step, evaluator and trainer settings of our GAN models.

    The class using it sets ``self.batch_size`` (``None`` keeps the datamodule's) and ``self.model``
    (a torch model returning ``InferenceBatch`` in eval mode).
    """

    batch_size: int | None

    def setup(self, stage: str) -> None:
        """Apply the ``batch_size`` hyper-parameter to the datamodule before its loaders exist."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and self.batch_size is not None and datamodule is not None:
            if getattr(datamodule, "train_batch_size", self.batch_size) != self.batch_size:
                logger.info("%s: training with batch_size=%d (model hyper-parameter)", self.name, self.batch_size)
            datamodule.train_batch_size = self.batch_size

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Score the batch; anomalib's post-processor collects normalisation and thresholds."""
        del args, kwargs
        predictions = self.model(batch.image)
        return batch.update(**predictions._asdict())

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """anomalib's default metrics plus the CBiGAN paper's maximum balanced accuracy (image level)."""
        return evaluator_with_balanced_accuracy()

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """Manual optimisation: no automatic clipping; no sanity validation (untrained scores)."""
        return {"gradient_clip_val": 0, "num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        """The models learn from normal images only."""
        return LearningType.ONE_CLASS
