"""Skip-GANomaly's losses (Akçay et al. 2019, Sec. III-B), also SAGAN's.

Generator: ``w_adv * BCE(D(G(x)), real) + w_con * |x - G(x)|_1 + w_lat * |f(x) - f(G(x))|_2^2`` (means),
with the papers' weights 1, 40, 1. Discriminator: ``(BCE(D(x), real) + BCE(D(G(x)), fake)) / 2``.

Example:
    >>> import torch
    >>> loss = GeneratorLoss()
    >>> x = torch.zeros(1, 3, 2, 2)
    >>> features = torch.zeros(1, 4)
    >>> round(float(loss(x, x + 0.5, torch.tensor([0.0]), features, features + 1.0)), 4)  # ln 2 + 40 * 0.5 + 1
    21.6931
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class GeneratorLoss(nn.Module):
    """Adversarial + contextual + latent loss of the generator.

    Args:
        adversarial_weight (float): ``w_adv``. Defaults to ``1``.
        contextual_weight (float): ``w_con``. Defaults to ``40``.
        latent_weight (float): ``w_lat``. Defaults to ``1``.
    """

    def __init__(
        self, adversarial_weight: float = 1.0, contextual_weight: float = 40.0, latent_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.adversarial_weight = adversarial_weight
        self.contextual_weight = contextual_weight
        self.latent_weight = latent_weight

    def forward(
        self,
        images: torch.Tensor,
        reconstructions: torch.Tensor,
        fake_logits: torch.Tensor,
        real_features: torch.Tensor,
        fake_features: torch.Tensor,
    ) -> torch.Tensor:
        """The weighted sum; ``fake_logits`` are D's logits for the reconstructions."""
        adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        contextual = (images - reconstructions).abs().mean()
        latent = (real_features - fake_features).pow(2).mean()
        return self.adversarial_weight * adversarial + self.contextual_weight * contextual + self.latent_weight * latent


class DiscriminatorLoss(nn.Module):
    """Binary cross-entropy of real images against reconstructions (both papers).

    Example:
        >>> import torch
        >>> round(float(DiscriminatorLoss()(torch.tensor([0.0]), torch.tensor([0.0]))), 4)  # ln 2
        0.6931
    """

    def forward(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Mean of the real and fake terms."""
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return (real + fake) / 2
