"""AUROC of raw scores, before anomalib's post-processor: the one AUROC helper of the package and its harness.

anomalib's ``image_AUROC`` is computed on normalised scores clamped to [0, 1], which ties the
scores outside the validation range; quality floors, untrained baselines, sweep rows and per-defect tables
compare raw scores.

Example:
    >>> from anomalib_cbigan.metrics import auroc
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch
from anomalib.data import Batch

if TYPE_CHECKING:  # importing anomalib.models registers this package's models, which import this module
    from anomalib.models.components import AnomalibModule


def auroc(labels: Sequence[int] | torch.Tensor, scores: Sequence[float] | torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for 0/1 ``labels`` (exact, at any score scale); NaN without both labels.

    Example:
        >>> auroc([1, 1], [0.2, 0.3])
        nan
    """
    from sklearn.metrics import roc_auc_score

    labels = [int(label) for label in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    if len(set(labels)) != 2:  # noqa: PLR2004
        return float("nan")
    scores = scores.tolist() if isinstance(scores, torch.Tensor) else list(scores)
    return float(roc_auc_score(labels, scores))


def raw_image_auroc(model: AnomalibModule, batches: Iterable[Batch]) -> float:
    """AUROC of ``model.model``'s ``pred_score`` (eval mode, the model's pre-processing) over ``batches``.

    Example:
        >>> import torch
        >>> from anomalib.data import ImageBatch
        >>> from anomalib_cbigan import Cbigan
        >>> model = Cbigan(input_size=(64, 64))
        >>> batch = ImageBatch(image=torch.rand(4, 3, 64, 64), gt_label=torch.tensor([0, 0, 1, 1]))
        >>> 0.0 <= raw_image_auroc(model, [batch]) <= 1.0
        True
    """
    torch_model = model.model.eval()
    scores, labels = [], []
    with torch.no_grad():
        for batch in batches:
            images, _ = model.pre_processor.transform(batch.image, batch.gt_mask)
            scores.append(torch_model(images).pred_score.flatten().double())
            labels.append(batch.gt_label.int())
    return auroc(torch.cat(labels), torch.cat(scores))
