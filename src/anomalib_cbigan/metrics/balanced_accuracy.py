"""Maximum balanced accuracy ``B = max_t (TPR(t) + TNR(t)) / 2`` over all score thresholds.

The CBiGAN paper's Table II metric (as MVTec AD's paper and CAVGA report it); the maximising
threshold is the one of Youden's index ``J = TPR + TNR - 1``. Computed exactly from the ROC
curve (every distinct score is a threshold; tied scores move together), on the scores as
given (no sigmoid, unlike torchmetrics' ROC on scores outside [0, 1]).

With only one class present the metric is undefined: it warns and returns NaN (anomalib's
Evaluator then logs NaN), never raises.

Example:
    >>> import torch
    >>> from anomalib.data import ImageBatch
    >>> from anomalib_cbigan.metrics import MaxBalancedAccuracy
    >>> metric = MaxBalancedAccuracy(fields=["pred_score", "gt_label"], prefix="image_")
    >>> batch = ImageBatch(image=torch.rand(4, 3, 8, 8), pred_score=torch.tensor([0.1, 0.6, 0.4, 0.9]),
    ...                    gt_label=torch.tensor([0, 0, 1, 1]))
    >>> float(metric(batch))
    0.75
"""

from __future__ import annotations

import warnings

import torch
from anomalib.metrics.base import AnomalibMetric
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class _MaxBalancedAccuracy(Metric):
    """torchmetrics form: ``update(preds, target)`` with any shapes (flattened), ``compute()``.

    Scores are used as they are: unlike torchmetrics' ROC it applies no sigmoid to scores
    outside [0, 1] (a sigmoid saturates large raw scores into ties and changes the result).
    """

    full_state_update = False
    preds: list[torch.Tensor]
    target: list[torch.Tensor]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add scores and binary (0 normal, 1 anomalous) targets."""
        preds, target = preds.detach().flatten(), target.detach().flatten()
        if preds.shape != target.shape:
            msg = f"MaxBalancedAccuracy got {preds.numel()} scores for {target.numel()} targets"
            raise ValueError(msg)
        if torch.isnan(preds).any():
            msg = "MaxBalancedAccuracy got NaN scores; the model's output is not finite"
            raise ValueError(msg)
        if ((target != 0) & (target != 1)).any():
            msg = f"MaxBalancedAccuracy needs binary targets (0 normal, 1 anomalous), got {target.unique().tolist()}"
            raise ValueError(msg)
        self.preds.append(preds.to(torch.float64))
        self.target.append(target.to(torch.int64))

    def compute(self) -> torch.Tensor:
        """``max (TPR + 1 - FPR) / 2`` over all thresholds; NaN with a warning for one class only."""
        preds, target = dim_zero_cat(self.preds), dim_zero_cat(self.target)
        positives = int(target.sum())
        negatives = target.numel() - positives
        if positives == 0 or negatives == 0:
            warnings.warn(
                f"MaxBalancedAccuracy needs normal and anomalous samples; got {target.numel()} samples of one "
                "class only. Returning NaN.",
                RuntimeWarning,
                stacklevel=2,
            )
            return torch.tensor(float("nan"))
        order = torch.argsort(preds, descending=True, stable=True)
        scores, labels = preds[order], target[order]
        true_positives = labels.cumsum(0).double()
        false_positives = (1 - labels).cumsum(0).double()
        # Threshold "score >= s" for each distinct s: the last position of each run of tied scores.
        last_of_tie = torch.cat([torch.nonzero(scores[1:] != scores[:-1]).flatten(), torch.tensor([len(scores) - 1])])
        tpr = true_positives[last_of_tie] / positives
        tnr = 1 - false_positives[last_of_tie] / negatives
        # A threshold above every score (all predicted normal) gives (0 + 1) / 2.
        return torch.maximum(((tpr + tnr) / 2).max(), torch.tensor(0.5, dtype=torch.float64)).float()


class MaxBalancedAccuracy(AnomalibMetric, _MaxBalancedAccuracy):  # type: ignore[misc]
    """Anomalib metric: takes its inputs from batch ``fields`` and plugs into anomalib's Evaluator."""
