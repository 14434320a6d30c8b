"""Each loss term against hand-computed values on tiny tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from anomalib_cbigan.models.cbigan.loss import (
    CriticLoss,
    EncoderGeneratorLoss,
    consistency_loss,
    critic_adversarial_loss,
    encoder_generator_adversarial_loss,
    gradient_penalty,
)
from anomalib_cbigan.models.cbigan.torch_model import CriticOutput

REAL = torch.tensor([1.0, 3.0])  # mean 2
FAKE = torch.tensor([-1.0, 0.0])  # mean -0.5


def test_adversarial_terms() -> None:
    assert critic_adversarial_loss(REAL, FAKE).item() == pytest.approx(-0.5 - 2.0)
    assert encoder_generator_adversarial_loss(REAL, FAKE).item() == pytest.approx(2.0 + 0.5)


def test_consistency_uses_per_sample_sums() -> None:
    x = torch.zeros(2, 1, 2, 2)
    x_rec = torch.tensor([[[[1.0, -1.0], [0.0, 0.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])  # sums 2 and 2
    z = torch.zeros(2, 3)
    z_rec = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, -1.0]])  # sums 3 and 1
    assert consistency_loss(x, x_rec, z, z_rec).item() == pytest.approx(2.0 + 2.0)


def test_generator_loss_mixes_with_alpha() -> None:
    x, x_rec = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)  # L_R = 4
    z, z_rec = torch.zeros(2, 3), torch.ones(2, 3)  # L_R' = 3
    loss = EncoderGeneratorLoss(alpha=0.25)(REAL, FAKE, (x, x_rec, z, z_rec))
    assert loss.item() == pytest.approx(0.75 * 2.5 + 0.25 * 7.0)
    assert EncoderGeneratorLoss(alpha=1.0)(REAL, FAKE, (x, x_rec, z, z_rec)).item() == pytest.approx(7.0)


def test_alpha_zero_is_exactly_the_bigan_loss() -> None:
    scores = torch.randn(2, 8)
    loss = EncoderGeneratorLoss(alpha=0.0)(scores[0], scores[1])
    assert torch.equal(loss, encoder_generator_adversarial_loss(scores[0], scores[1]))
    with pytest.raises(ValueError, match="cycle"):
        EncoderGeneratorLoss(alpha=0.5)(scores[0], scores[1])


class _LinearCritic(nn.Module):
    """D(x, z) = sum(w_x * x) + sum(w_z * z): gradient norm is |(w_x, w_z)| everywhere."""

    def __init__(self, w_x: float, w_z: float) -> None:
        super().__init__()
        self.w_x = nn.Parameter(torch.tensor(w_x))
        self.w_z = nn.Parameter(torch.tensor(w_z))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> CriticOutput:
        score = self.w_x * x.flatten(1).sum(1) + self.w_z * z.sum(1)
        return CriticOutput(score=score, features=x.flatten(1))


def test_gradient_penalty_matches_hand_computation_and_is_differentiable() -> None:
    critic = _LinearCritic(w_x=0.5, w_z=1.0)
    x_real, x_fake = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)  # 4 image inputs
    z_real, z_fake = torch.rand(3, 2), torch.rand(3, 2)  # 2 latent inputs
    penalty = gradient_penalty(critic, x_real, z_real, x_fake, z_fake)
    norm = (4 * 0.5**2 + 2 * 1.0**2) ** 0.5  # sqrt(3)
    assert penalty.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)
    assert penalty.item() > 0
    penalty.backward()
    assert critic.w_x.grad is not None
    assert critic.w_x.grad.abs() > 0  # the penalty trains the critic's weights


def test_critic_loss_adds_weighted_penalty() -> None:
    critic = _LinearCritic(w_x=0.5, w_z=1.0)
    real = (torch.ones(2, 1, 2, 2), torch.ones(2, 2))  # score 0.5*4 + 2 = 4
    fake = (torch.zeros(2, 1, 2, 2), torch.zeros(2, 2))  # score 0
    total, penalty = CriticLoss(gp_weight=10.0)(critic, real, fake)
    assert total.item() == pytest.approx(0 - 4 + 10 * penalty.item(), rel=1e-5)


class _RecordingCritic(_LinearCritic):
    """Keeps the points the penalty evaluates."""

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> CriticOutput:
        self.seen = (x.detach().clone(), z.detach().clone())
        return super().forward(x, z)


@pytest.mark.parametrize("pairing", ["official", "real_fake"])
def test_gradient_penalty_pairing(pairing: str) -> None:
    """official: eps*x + (1-eps)*G(z) with eps*z + (1-eps)*E(x) (official losses.py); real_fake: the critic's real
    pair (x, E(x)) with its fake pair (G(z), z)."""
    critic = _RecordingCritic(w_x=0.5, w_z=1.0)
    x_real, x_fake = torch.ones(4, 1, 2, 2), torch.zeros(4, 1, 2, 2)  # the mixed image is eps itself
    z_real, z_fake = torch.zeros(4, 2), torch.ones(4, 2)  # E(x) = 0, z = 1
    gradient_penalty(critic, x_real, z_real, x_fake, z_fake, pairing=pairing)
    eps = critic.seen[0][:, 0, 0, 0]
    expected = eps if pairing == "official" else 1 - eps
    torch.testing.assert_close(critic.seen[1][:, 0], expected)
    with pytest.raises(ValueError, match="penalty_pairing must be one of"):
        CriticLoss(penalty_pairing="crossed")
