"""Metrics anomalib lacks (maximum balanced accuracy, AUROC of raw scores) and the models' default evaluator."""

from .balanced_accuracy import MaxBalancedAccuracy
from .evaluator import default_evaluator
from .raw_scores import auroc, raw_image_auroc

__all__ = ["MaxBalancedAccuracy", "auroc", "default_evaluator", "raw_image_auroc"]
