"""Image AUROC of a model's raw scores, before anomalib's post-processor.

anomalib's ``image_AUROC`` is computed on normalised scores clamped to [0, 1], which ties the
scores outside the validation range; quality floors and untrained baselines compare raw ``A(x)``.

Example:
    >>> from anomalib_cbigan import Cbigan
    >>> from anomalib_cbigan.metrics import raw_image_auroc
    >>> raw_image_auroc(Cbigan(input_size=(64, 64)), datamodule.test_dataloader())  # doctest: +SKIP
    0.64
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from anomalib.data import Batch
from anomalib.models.components import AnomalibModule
from torchmetrics.functional.classification import binary_auroc


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
            scores.append(torch_model(images).pred_score.flatten())
            labels.append(batch.gt_label.int())
    raw = torch.cat(scores).double()
    # torchmetrics squashes scores outside [0, 1] through a sigmoid, which ties large raw scores;
    # a min-max rescale keeps their order.
    spread = (raw.max() - raw.min()).clamp_min(torch.finfo(raw.dtype).tiny)
    return float(binary_auroc((raw - raw.min()) / spread, torch.cat(labels)))
