"""Datamodules: anomalib's ``MVTecAD`` with checks first, and the embedded texture data.

Example:
    >>> from anomalib_cbigan.data import TextureAnomalies
    >>> datamodule = TextureAnomalies(category="brick")  # built on first use, no download
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anomalib.data import MVTecAD
from anomalib.data.datasets.base import AnomalibDataset
from anomalib.data.utils import ValSplitMode
from anomalib.data.utils.split import random_split
from anomalib.data.utils.synthetic import SyntheticAnomalyDataset
from anomalib.utils.attrs import get_nested_attr

from anomalib_cbigan.registry import register_datamodule

from .brightness import with_standardized_brightness
from .synthetic_defects import WINDOW_FRACTION, SyntheticDefectsDataset
from .texture_anomalies import CATEGORIES, build_texture_dataset, default_root, is_current
from .tree_checks import check_batches_stack, check_mvtec_tree


@register_datamodule
class LocalMVTecAD(MVTecAD):
    """``MVTecAD`` for a tree already on disk: checks it first and never downloads.

    Takes every argument of :class:`anomalib.data.MVTecAD`, plus ``require_rgb`` (default ``False``: grayscale
    and RGBA images are converted to RGB as anomalib reads them, and logged; ``True`` refuses them) and
    ``standardize_brightness`` (default ``None``; a mean intensity in (0, 1) scales every training, validation and
    test image to that mean before its other transforms: :class:`~anomalib_cbigan.data.StandardizeBrightness`) and
    ``synthetic_anomalies`` (with ``val_split_mode="synthetic"``: ``"perlin"``, anomalib's Perlin-noise blends,
    ``"defects"``, this package's painted defects
    (:class:`~anomalib_cbigan.data.synthetic_defects.SyntheticDefectsDataset`), or ``"mixture"``, half of each;
    default ``"perlin"``). :meth:`synthetic_validation` makes the split with another kind on the same held-out
    images, to compare how well each ranks what the test would.

    Example:
        >>> from anomalib_cbigan.data import LocalMVTecAD
        >>> data = LocalMVTecAD(root="./datasets/MVTecAD", category="grid", val_split_mode="synthetic",
        ...                     synthetic_anomalies="defects", standardize_brightness=0.45)
        >>> type(data.test_augmentations).__name__
        'StandardizeBrightness'
    """

    SYNTHETIC_ANOMALIES = ("perlin", "defects", "mixture")
    # The painted defects' window, a share of each image (synthetic_defects.paint_defect): whole photographs here.
    DEFECT_WINDOW_FRACTION = WINDOW_FRACTION

    def __init__(
        self,
        *args: Any,  # noqa: ANN401
        require_rgb: bool = False,
        standardize_brightness: float | None = None,
        synthetic_anomalies: str = "perlin",
        **kwargs: Any,  # noqa: ANN401
    ) -> None:
        self._check_kind(synthetic_anomalies)
        super().__init__(*args, **kwargs)
        self.synthetic_anomalies = synthetic_anomalies
        self.held_out_normal: AnomalibDataset | None = None  # the synthetic split's normal images, once set up
        self.require_rgb = require_rgb
        self.standardize_brightness = standardize_brightness
        for stage in ("train", "val", "test"):
            name = f"{stage}_augmentations"
            setattr(self, name, with_standardized_brightness(getattr(self, name), standardize_brightness))

    def prepare_data(self) -> None:
        """Check the tree (see :func:`~anomalib_cbigan.data.tree_checks.check_mvtec_tree`)."""
        check_mvtec_tree(self.root, self.category, require_rgb=self.require_rgb)

    def setup(self, stage: str | None = None) -> None:
        """anomalib's set-up; then, where a trainer's model will batch the images, check that they can be batched
        (:func:`~anomalib_cbigan.data.tree_checks.check_batches_stack`), for any model."""
        super().setup(stage)
        model = get_nested_attr(self, "trainer.model", None)
        if model is not None and self.trainer.datamodule is self:  # a wrapper batches as it does: it checks
            check_batches_stack(self, type(model).__name__)

    def _create_val_split(self) -> None:
        """anomalib's split; a synthetic one holds out the same images and makes ``synthetic_anomalies``."""
        if self.val_split_mode != ValSplitMode.SYNTHETIC:
            super()._create_val_split()
            return
        self.train_data, self.held_out_normal = random_split(self.train_data, self.val_split_ratio, seed=self.seed)
        self.val_data = self._synthetic_split(self.synthetic_anomalies)

    def synthetic_validation(self, kind: str) -> AnomalibDataset:
        """The synthetic validation split with ``kind`` anomalies (one of :attr:`SYNTHETIC_ANOMALIES`) made from the
        held-out normal images of this set-up, with the validation split's transforms: the split of another kind on
        the same normal images.

        Example:
            >>> data = LocalMVTecAD(root="./datasets/MVTecAD", category="grid", val_split_mode="synthetic")
            >>> data.synthetic_validation("mixture")
            Traceback (most recent call last):
            ...
            RuntimeError: synthetic_validation needs the synthetic split of a set-up datamodule: call setup() first
        """
        self._check_kind(kind)
        if self.held_out_normal is None or getattr(self, "val_data", None) is None:
            msg = "synthetic_validation needs the synthetic split of a set-up datamodule: call setup() first"
            raise RuntimeError(msg)
        dataset = self._synthetic_split(kind)
        dataset.augmentations = self.val_data.augmentations  # as set-up gave the split's (a model's resize included)
        return dataset

    @classmethod
    def _check_kind(cls, kind: str) -> None:
        if kind not in cls.SYNTHETIC_ANOMALIES:
            msg = f"synthetic_anomalies must be one of {cls.SYNTHETIC_ANOMALIES}, got {kind!r}"
            raise ValueError(msg)

    def _synthetic_split(self, kind: str) -> AnomalibDataset:
        normal = self.held_out_normal
        if kind == "perlin":  # anomalib's own
            return SyntheticAnomalyDataset.from_dataset(normal)
        return SyntheticDefectsDataset(normal.augmentations, normal.samples, seed=self.seed,
                                       perlin_fraction=0.5 if kind == "mixture" else 0.0,
                                       window_fraction=self.DEFECT_WINDOW_FRACTION)  # fmt: skip


@register_datamodule
class TextureAnomalies(LocalMVTecAD):
    """The embedded texture anomaly dataset (brick, grass, gravel), written on first use.

    Args:
        root (Path | str | None): Cache folder; defaults to
            :func:`~anomalib_cbigan.data.texture_anomalies.default_root`.
        category (str): ``"brick"``, ``"grass"`` or ``"gravel"``. Defaults to ``"brick"``.
        train_batch_size (int): Defaults to ``16``.
        eval_batch_size (int): Defaults to ``16``.
        num_workers (int): Defaults to ``0`` (the images are small; workers cost more than they save).
        **kwargs: Any other :class:`anomalib.data.MVTecAD` argument.
    """

    # Its images are the defect generator's 192-px crops already: a painted validation defect spans the whole
    # image, the size of the test set's defects (a 512-px photograph's window would make them 7x smaller in area).
    DEFECT_WINDOW_FRACTION = 1.0

    def __init__(
        self,
        root: Path | str | None = None,
        category: str = "brick",
        train_batch_size: int = 16,
        eval_batch_size: int = 16,
        num_workers: int = 0,
        **kwargs: Any,  # noqa: ANN401
    ) -> None:
        if category not in CATEGORIES:
            msg = f"TextureAnomalies has categories {list(CATEGORIES)}, got {category!r}"
            raise ValueError(msg)
        super().__init__(
            root=Path(root) if root is not None else default_root(),
            category=category,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            **kwargs,
        )

    def prepare_data(self) -> None:
        """Write the category's tree unless a current one is there (of any size), then check it."""
        if not is_current(self.root, self.category):
            build_texture_dataset(self.root, [self.category])
        super().prepare_data()
