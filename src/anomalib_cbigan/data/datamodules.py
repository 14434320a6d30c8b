"""Datamodules: anomalib's ``MVTecAD`` with checks first, and the embedded texture data.

Example:
    >>> from anomalib_cbigan.data import TextureAnomalies
    >>> datamodule = TextureAnomalies(category="brick")  # built on first use, no download
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anomalib.data import MVTecAD

from anomalib_cbigan.registry import register_datamodule

from .texture_anomalies import CATEGORIES, build_texture_dataset, default_root, is_current
from .tree_checks import check_mvtec_tree


@register_datamodule
class LocalMVTecAD(MVTecAD):
    """``MVTecAD`` for a tree already on disk: checks it first and never downloads.

    Takes every argument of :class:`anomalib.data.MVTecAD`, plus ``require_rgb`` (default ``False``: grayscale
    and RGBA images are converted to RGB as anomalib reads them, and logged; ``True`` refuses them).
    """

    def __init__(self, *args: Any, require_rgb: bool = False, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.require_rgb = require_rgb

    def prepare_data(self) -> None:
        """Check the tree (see :func:`~anomalib_cbigan.data.tree_checks.check_mvtec_tree`)."""
        check_mvtec_tree(self.root, self.category, require_rgb=self.require_rgb)


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
