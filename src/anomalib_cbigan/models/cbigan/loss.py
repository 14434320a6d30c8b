"""Losses of the Wasserstein BiGAN with cycle consistency (CBiGAN, paper eqs. 5, 6, 10-13).

Sign conventions follow the paper: the critic maximises ``D(x, E(x)) - D(G(z), z)``;
E and G minimise it. ``L_C`` uses per-sample *sums* of absolute errors averaged over the
batch (official ``losses.py``, checked by running it: ``benchmarks/reference_parity.py``), which is
why useful values of alpha are small (1e-4, 1e-5).

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.cbigan.loss import consistency_loss
    >>> x = torch.zeros(2, 3, 2, 2); z = torch.zeros(2, 4)
    >>> float(consistency_loss(x, x + 1, z, z - 0.5))
    14.0
"""

from __future__ import annotations

import torch
from torch import nn

from anomalib_cbigan.models.gan_training import joint_call


def critic_adversarial_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """``L_D = mean D(G(z), z) - mean D(x, E(x))`` (eq. 6)."""
    return fake_score.mean() - real_score.mean()


def encoder_generator_adversarial_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """``L_EG = mean D(x, E(x)) - mean D(G(z), z)`` (eq. 5)."""
    return real_score.mean() - fake_score.mean()


def l1_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sum of absolute differences per sample (batch dimension kept)."""
    return (a - b).abs().flatten(1).sum(dim=1)


def consistency_loss(
    images: torch.Tensor,
    reconstructed_images: torch.Tensor,
    latent: torch.Tensor,
    reconstructed_latent: torch.Tensor,
) -> torch.Tensor:
    """``L_C = mean |x - G(E(x))|_1 + mean |z - E(G(z))|_1`` (eqs. 10-12)."""
    return l1_per_sample(images, reconstructed_images).mean() + l1_per_sample(latent, reconstructed_latent).mean()


PENALTY_PAIRINGS = ("official", "real_fake")


def check_penalty_pairing(pairing: str) -> str:
    """Return ``pairing`` if it is one of :data:`PENALTY_PAIRINGS`, else raise a ``ValueError`` naming them."""
    if pairing not in PENALTY_PAIRINGS:
        msg = f"penalty_pairing must be one of {PENALTY_PAIRINGS}, got {pairing!r}"
        raise ValueError(msg)
    return pairing


def gradient_penalty(
    critic: nn.Module,
    real_images: torch.Tensor,
    real_latent: torch.Tensor,
    fake_images: torch.Tensor,
    fake_latent: torch.Tensor,
    pairing: str = "official",
) -> torch.Tensor:
    """Two-sided WGAN-GP penalty on the joint (x, z) input: ``mean (||grad|| - 1)^2``.

    Points are interpolated with one random ``eps`` per sample; the gradients with respect to the
    image and the latent are concatenated before taking the norm. ``pairing="official"`` (official
    ``losses.py``) mixes ``(x, z)`` with ``(G(z), E(x))``: ``eps * x + (1 - eps) * G(z)`` and
    ``eps * z + (1 - eps) * E(x)``; ``"real_fake"`` mixes the critic's real pair ``(x, E(x))`` with its
    fake pair ``(G(z), z)`` (textbook WGAN-GP on the joint input). The graph is kept
    (``create_graph=True``) so the penalty can be back-propagated.
    """
    check_penalty_pairing(pairing)
    batch = real_images.shape[0]
    # drawn in float32 whatever the precision, so that a float64 run interpolates the same points (the tests'
    # float64 references of the float32 steps)
    eps = torch.rand(batch, 1, device=real_images.device).to(real_images.dtype)
    image_eps = eps.view(batch, 1, 1, 1)
    mixed_images = (image_eps * real_images + (1 - image_eps) * fake_images).detach()
    if pairing == "official":
        mixed_latent = (eps * fake_latent + (1 - eps) * real_latent).detach()
    else:
        mixed_latent = (eps * real_latent + (1 - eps) * fake_latent).detach()
    mixed_images.requires_grad_(True)
    mixed_latent.requires_grad_(True)
    score = critic(mixed_images, mixed_latent).score
    grad_images, grad_latent = torch.autograd.grad(
        outputs=score.sum(),
        inputs=(mixed_images, mixed_latent),
        create_graph=True,
    )
    grads = torch.cat([grad_images.flatten(1), grad_latent.flatten(1)], dim=1)
    return ((grads.norm(2, dim=1) - 1) ** 2).mean()


class CriticLoss(nn.Module):
    """Critic loss ``L_D + gp_weight * GP``.

    Args:
        gp_weight (float): Weight of the gradient penalty. Defaults to ``10``.
        penalty_pairing (str): Which points the penalty interpolates, see :func:`gradient_penalty`.
            Defaults to ``"official"``.
    """

    def __init__(self, gp_weight: float = 10.0, penalty_pairing: str = "official") -> None:
        super().__init__()
        self.gp_weight = gp_weight
        self.penalty_pairing = check_penalty_pairing(penalty_pairing)

    def forward(
        self,
        critic: nn.Module,
        real: tuple[torch.Tensor, torch.Tensor],
        fake: tuple[torch.Tensor, torch.Tensor],
        *,
        joint: bool = False,
        penalty_scale: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(total loss, gradient penalty)`` for real ``(x, E(x))`` and fake ``(G(z), z)`` pairs; ``joint``:
        the critic scores both pairs in one call (:func:`~anomalib_cbigan.models.gan_training.joint_call`);
        ``penalty_scale`` multiplies the penalty's weight (``0``: the penalty is not computed, and reads 0)."""
        real_output, fake_output = joint_call(critic, real, fake, joint=joint)
        adversarial = critic_adversarial_loss(real_output.score, fake_output.score)
        if not self.gp_weight or not penalty_scale:
            return adversarial, adversarial.new_zeros(())
        penalty = gradient_penalty(critic, *real, *fake, pairing=self.penalty_pairing)
        return adversarial + self.gp_weight * penalty_scale * penalty, penalty


class EncoderGeneratorLoss(nn.Module):
    """E/G loss ``(1 - alpha) * L_EG + alpha * L_C`` (eq. 13).

    With ``alpha = 0`` this is exactly the (Wasserstein) BiGAN loss of EGBAD and the
    cycle reconstructions are not needed; with ``alpha = 1`` it is a double autoencoder.

    Args:
        alpha (float): Weight of the consistency term, in [0, 1].
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(
        self,
        real_score: torch.Tensor,
        fake_score: torch.Tensor,
        cycle: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Loss from critic scores and ``cycle = (x, G(E(x)), z, E(G(z)))`` (needed when alpha > 0)."""
        adversarial = encoder_generator_adversarial_loss(real_score, fake_score)
        if self.alpha == 0:
            return adversarial
        if cycle is None:
            msg = "EncoderGeneratorLoss with alpha > 0 needs the cycle reconstructions"
            raise ValueError(msg)
        return (1 - self.alpha) * adversarial + self.alpha * consistency_loss(*cycle)
