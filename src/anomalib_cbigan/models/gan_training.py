"""Helpers every GAN model of this package trains with: frozen networks, joint network calls, the optimiser,
value checks, divergence errors.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn, optim


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


def joint_call(
    network: nn.Module, first: Sequence[torch.Tensor], second: Sequence[torch.Tensor], *, joint: bool = True
) -> tuple[Any, Any]:
    """``network(*first), network(*second)``, computed as one call on the inputs concatenated along the batch
    (``joint=False``: as two calls, the models' ``fused_steps=False``).

    The same numbers (to float32 rounding) for a network whose samples do not interact, as none of this package's
    BiGAN networks do (no batch statistics, no dropout); half the operator calls, each on twice the batch (on a GPU,
    half the kernel launches; docs/training.md measures it on a CPU). Outputs may be tensors or named tuples of
    tensors.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> layer = nn.Linear(3, 2)
        >>> a, b = torch.randn(4, 3), torch.randn(2, 3)
        >>> out_a, out_b = joint_call(layer, (a,), (b,))
        >>> torch.allclose(out_a, layer(a)) and torch.allclose(out_b, layer(b))
        True
    """
    if not joint:
        return network(*first), network(*second)
    size = len(first[0])
    output = network(*(torch.cat(pair) for pair in zip(first, second, strict=True)))
    if isinstance(output, torch.Tensor):
        return output[:size], output[size:]
    return type(output)(*(part[:size] for part in output)), type(output)(*(part[size:] for part in output))


def adam(parameters: Iterable[nn.Parameter], *, fused: bool, **kwargs: Any) -> optim.Adam:  # noqa: ANN401
    """``optim.Adam``; ``fused``: its fused implementation (one kernel for all parameters' updates, instead of a
    dozen operator calls per parameter tensor), the same update to float32 rounding."""
    return optim.Adam(parameters, fused=True if fused else None, **kwargs)


def check_range(name: str, value: float, low: float, high: float, *, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``low <= value <= high`` (or ``< high``)."""
    ok = low <= value < high if high_open else low <= value <= high
    if not ok or math.isnan(value):
        bracket = ")" if high_open else "]"
        msg = f"{name} must be in [{low}, {high}{bracket}, got {value}"
        raise ValueError(msg)


def check_arguments(checks: dict[str, bool], values: dict[str, object]) -> None:
    """Raise ``ValueError`` naming the first argument whose check failed, with its value from ``values``.

    Example:
        >>> check_arguments({"lr": -1 > 0}, {"lr": -1})
        Traceback (most recent call last):
        ...
        ValueError: lr has an invalid value: -1
    """
    for name, ok in checks.items():
        if not ok:
            msg = f"{name} has an invalid value: {values[name]!r}"
            raise ValueError(msg)


def check_betas(name: str, betas: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """Adam betas: two numbers in [0, 1)."""
    if len(betas) != 2:
        msg = f"{name} must be two numbers (beta1, beta2), got {betas}"
        raise ValueError(msg)
    for beta in betas:
        check_range(name, float(beta), 0.0, 1.0, high_open=True)
    return float(betas[0]), float(betas[1])


def check_rgb_batch(images: torch.Tensor, model: str, dtype: torch.dtype | None = None) -> None:
    """Raise ``ValueError`` naming ``model`` unless ``images`` is an (N, 3, H, W) batch (of ``dtype``, if given)."""
    if not isinstance(images, torch.Tensor):
        msg = f"{model} expects a torch.Tensor batch of images, got {type(images).__name__}"
        raise TypeError(msg)
    if dtype is not None and images.dtype != dtype:
        hint = "scale 8-bit images to [0, 1] floats first (the pre-processor then maps them to [-1, 1]); " if not (
            images.is_floating_point()) else ""  # fmt: skip
        msg = (
            f"{model} has {str(dtype).removeprefix('torch.')} weights and got {str(images.dtype).removeprefix('torch.')} "
            f"images: {hint}convert with images.to({dtype}) or the model with model.to({images.dtype})"
        )
        raise ValueError(msg)
    if images.ndim != 4:
        msg = f"{model} expects a batch of images shaped (N, 3, H, W), got shape {tuple(images.shape)}"
        raise ValueError(msg)
    if images.shape[1] != 3:
        msg = (
            f"{model} expects RGB images with 3 channels, got {images.shape[1]} channels. "
            "Convert grayscale or RGBA images to RGB first."
        )
        raise ValueError(msg)


# A loss this large means the critic has exploded (WGAN-GP and least-squares losses of a working GAN stay within
# hundreds); stopping here keeps the run from writing checkpoints of a diverged model.
LOSS_LIMIT = 1e6


def check_loss(
    loss: torch.Tensor,
    name: str,
    *,
    model: str,
    step: int,
    epoch: int,
    causes: str,
    checkpoint: str | None = None,
    limit: float = LOSS_LIMIT,
) -> None:
    """Stop training, naming the loss, the step, the likely causes and the last checkpoint, if a loss diverged.

    Diverged: not finite, or larger in magnitude than ``limit`` (an exploding critic).

    Example:
        >>> import torch
        >>> check_loss(torch.tensor(3.0), "critic_loss", model="Cbigan", step=1, epoch=0, causes="lr")
        >>> check_loss(torch.tensor(1e9), "critic_loss", model="Cbigan", step=7, epoch=0, causes="lr too high")
        Traceback (most recent call last):
        ...
        FloatingPointError: Cbigan diverged: critic_loss is 1000000000.0 at training batch 7 (epoch 0), beyond +-1e+06 (an exploding critic). Likely causes: lr too high. No checkpoint had been written yet.
    """
    value = float(loss.detach())
    if math.isfinite(value) and abs(value) <= limit:
        return
    what = "" if not math.isfinite(value) else f", beyond +-{limit:g} (an exploding critic)"
    kept = f"The last checkpoint, {checkpoint}, is kept." if checkpoint else "No checkpoint had been written yet."
    msg = f"{model} diverged: {name} is {value} at training batch {step} (epoch {epoch}){what}. Likely causes: {causes}. {kept}"
    raise FloatingPointError(msg)
