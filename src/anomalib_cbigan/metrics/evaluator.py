"""The test metrics every model of this package reports by default.

anomalib's defaults (image and pixel AUROC and F1), MVTec AD's localisation metrics (pixel AUPR and AUPRO, the
per-region overlap up to 30 % false positives) and the CBiGAN paper's image maximum balanced accuracy.

Example:
    >>> from anomalib_cbigan.metrics import default_evaluator
    >>> [metric.name for metric in default_evaluator().test_metrics][4:]
    ['pixel_AUPR', 'pixel_AUPRO', 'image_MaxBalancedAccuracy']
"""

from __future__ import annotations

from anomalib.metrics import AUPR, AUPRO, Evaluator

from .balanced_accuracy import MaxBalancedAccuracy


def default_evaluator() -> Evaluator:
    """anomalib's default test metrics plus pixel AUPR, pixel AUPRO and ``image_MaxBalancedAccuracy``."""
    # Imported here: importing anomalib.models registers this package's models, which import this module.
    from anomalib.models.components import AnomalibModule

    defaults = AnomalibModule.configure_evaluator()
    localisation = [
        AUPR(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
        AUPRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
    ]
    balanced_accuracy = MaxBalancedAccuracy(fields=["pred_score", "gt_label"], prefix="image_")
    return Evaluator(test_metrics=[*defaults.test_metrics, *localisation, balanced_accuracy])
