"""FCBiGAN's least-squares BiGAN losses (thesis eqs. 5 and 6).

D pushes ``D(x, E(x))`` to 1 and ``D(G(z), z)`` to 0; G wants ``D(G(z), z) = 1``; E wants
``D(x, E(x)) = 0`` plus the reconstruction penalty ``lambda * |x - G(E(x))|_1`` (a per-pixel
mean here, so ``lambda`` does not depend on the patch size). The means run over the batch
and every location of D's prediction map.

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.fcbigan.loss import critic_loss
    >>> float(critic_loss(torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)))
    0.0
"""

from __future__ import annotations

import torch


def critic_loss(real_prediction: torch.Tensor, fake_prediction: torch.Tensor) -> torch.Tensor:
    """``1/2 E[(D(x, E(x)) - 1)^2] + 1/2 E[D(G(z), z)^2]``."""
    return 0.5 * (real_prediction - 1).pow(2).mean() + 0.5 * fake_prediction.pow(2).mean()


def generator_loss(fake_prediction: torch.Tensor) -> torch.Tensor:
    """``1/2 E[(D(G(z), z) - 1)^2]``."""
    return 0.5 * (fake_prediction - 1).pow(2).mean()


def encoder_loss(
    real_prediction: torch.Tensor,
    images: torch.Tensor,
    reconstruction: torch.Tensor,
    reconstruction_weight: float,
) -> torch.Tensor:
    """``1/2 E[D(x, E(x))^2] + lambda * mean |x - G(E(x))|``."""
    penalty = (images - reconstruction).abs().mean()
    return 0.5 * real_prediction.pow(2).mean() + reconstruction_weight * penalty
