"""Metrics anomalib lacks: the CBiGAN paper's maximum balanced accuracy, AUROC of raw scores."""

from .balanced_accuracy import MaxBalancedAccuracy, evaluator_with_balanced_accuracy
from .raw_scores import raw_image_auroc

__all__ = ["MaxBalancedAccuracy", "evaluator_with_balanced_accuracy", "raw_image_auroc"]
