"""Metrics anomalib lacks: the CBiGAN paper's maximum balanced accuracy."""

from .balanced_accuracy import MaxBalancedAccuracy, evaluator_with_balanced_accuracy

__all__ = ["MaxBalancedAccuracy", "evaluator_with_balanced_accuracy"]
