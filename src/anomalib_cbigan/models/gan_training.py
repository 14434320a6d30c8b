"""Helpers every GAN model of this package trains with: frozen networks, value checks, divergence errors.

Example:
    >>> from torch import nn
    >>> from anomalib_cbigan.models.gan_training import frozen
    >>> critic = nn.Linear(2, 1)
    >>> with frozen(critic):
    ...     critic.weight.requires_grad
    False
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off gradients for ``module``'s parameters inside the block (restored after)."""
    flags = [p.requires_grad for p in module.parameters()]
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)


def check_range(name: str, value: float, low: float, high: float, *, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``low <= value <= high`` (or ``< high``)."""
    ok = low <= value < high if high_open else low <= value <= high
    if not ok or math.isnan(value):
        bracket = ")" if high_open else "]"
        msg = f"{name} must be in [{low}, {high}{bracket}, got {value}"
        raise ValueError(msg)


def check_betas(name: str, betas: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """Adam betas: two numbers in [0, 1)."""
    if len(betas) != 2:
        msg = f"{name} must be two numbers (beta1, beta2), got {betas}"
        raise ValueError(msg)
    for beta in betas:
        check_range(name, float(beta), 0.0, 1.0, high_open=True)
    return float(betas[0]), float(betas[1])


def check_rgb_batch(images: torch.Tensor, model: str) -> None:
    """Raise ``ValueError`` naming ``model`` unless ``images`` is an (N, 3, H, W) batch."""
    if images.ndim != 4:
        msg = f"{model} expects a batch of images shaped (N, 3, H, W), got shape {tuple(images.shape)}"
        raise ValueError(msg)
    if images.shape[1] != 3:
        msg = (
            f"{model} expects RGB images with 3 channels, got {images.shape[1]} channels. "
            "Convert grayscale or RGBA images to RGB first."
        )
        raise ValueError(msg)


def check_finite(loss: torch.Tensor, name: str, *, model: str, step: int, epoch: int, causes: str) -> None:
    """Stop training with a message naming the loss, the step and the likely causes."""
    if not torch.isfinite(loss):
        msg = (
            f"{model} diverged: {name} is {loss.item()} at training batch {step} (epoch {epoch}). "
            f"Likely causes: {causes}. Checkpoints already written are kept."
        )
        raise FloatingPointError(msg)
