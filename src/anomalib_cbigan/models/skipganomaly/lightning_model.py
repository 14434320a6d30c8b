"""Skip-GANomaly: Skip Connected and Adversarially Trained Encoder-Decoder Anomaly Detection.

A U-Net generator reconstructs the image; a DCGAN discriminator tells images from reconstructions and lends
its last feature map to the latent loss and to the anomaly score
``A(x) = lambda * |x - G(x)|_1 + (1 - lambda) * |f(x) - f(G(x))|_2^2``.

Example:
    >>> from anomalib.engine import Engine
    >>> from anomalib_cbigan import Skipganomaly
    >>> from anomalib_cbigan.data import TextureAnomalies
    >>> model = Skipganomaly(input_size=(64, 64))
    >>> Engine(max_epochs=15).fit(model, datamodule=TextureAnomalies(category="grass"))  # doctest: +SKIP

Paper:
    Akçay, Atapour-Abarghouei, Breckon, "Skip-GANomaly: Skip Connected and Adversarially Trained
    Encoder-Decoder Anomaly Detection", IJCNN 2019, https://arxiv.org/abs/1901.08954.
    Official code: samet-akcay/skip-ganomaly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import nn, optim

from anomalib_cbigan.models.gan_module import CRITIC, GENERATOR, OneClassGanMixin, tanh_range_pre_processor
from anomalib_cbigan.models.gan_training import check_arguments, check_betas, check_range

from .loss import DiscriminatorLoss, GeneratorLoss
from .torch_model import SKIP_GANOMALY_BLOCKS, SkipganomalyModel

# The official code re-initialises a discriminator whose loss falls below this (it has won; G gets no signal).
DISCRIMINATOR_RESET_LOSS = 1e-5


class Skipganomaly(OneClassGanMixin, AnomalibModule):
    """Skip-GANomaly Lightning module: hyper-parameters, optimisers and the generator/discriminator steps.

    Args:
        input_size (Sequence[int]): Square, power-of-two side the pre-processor resizes to. Defaults to ``(64, 64)``.
        width (int): Channels of the first U-Net and discriminator level. Defaults to ``64`` (official code).
        adversarial_weight (float): ``w_adv``. Defaults to ``1``.
        contextual_weight (float): ``w_con``, of ``|x - G(x)|_1``. Defaults to ``40``.
        latent_weight (float): ``w_lat``, of ``|f(x) - f(G(x))|_2^2``. Defaults to ``1``.
        lambda_ (float): Weight of the reconstruction term in the score, in [0, 1]. Defaults to ``0.9``.
        lr (float): Adam learning rate of both optimisers. Defaults to ``2e-4``.
        betas (Sequence[float]): Adam betas of both optimisers. Defaults to ``(0.5, 0.999)``.
        critic_steps (int): Discriminator updates per batch, after the generator's. Defaults to ``1``.
        critic_lr_ratio (float): The discriminator's learning rate over the generator's (``lr``; TTUR, Heusel et
            al. 2017). Defaults to ``1``.
        batch_size (int | None): Training batch size; ``None`` keeps the datamodule's. Defaults to ``None``.
        anomaly_map_sigma (float): Gaussian smoothing of the map. Defaults to ``4``.
        channels_last (bool): Networks and training batches in ``channels_last`` memory format, same numbers
            (``benchmarks/training_speed.py`` times both). Defaults to ``True``.
        training_precision (str): ``"32"`` or ``"bf16-mixed"`` (bf16 autocast of the training steps;
            scoring stays float32). Defaults to ``"32"``.
        pre_processor, post_processor, evaluator, visualizer: as every anomalib model.

    Example:
        >>> from anomalib_cbigan import Skipganomaly
        >>> Skipganomaly(input_size=(32, 32)).model.input_size
        (32, 32)
    """

    blocks = SKIP_GANOMALY_BLOCKS  # the U-Net's down and up blocks (the Sagan subclass: SAGAN's)
    # Both papers' settings (Skip-GANomaly's official code): the defaults are the same.
    paper_settings: ClassVar[dict[str, Any]] = {
        "width": 64, "adversarial_weight": 1.0, "contextual_weight": 40.0, "latent_weight": 1.0, "lambda_": 0.9,
        "lr": 2e-4, "betas": (0.5, 0.999), "critic_steps": 1, "critic_lr_ratio": 1.0,
    }  # fmt: skip

    def __init__(
        self,
        input_size: Sequence[int] = (64, 64),
        width: int = 64,
        adversarial_weight: float = 1.0,
        contextual_weight: float = 40.0,
        latent_weight: float = 1.0,
        lambda_: float = 0.9,
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        critic_steps: int = 1,
        critic_lr_ratio: float = 1.0,
        batch_size: int | None = None,
        anomaly_map_sigma: float = 4.0,
        channels_last: bool = True,
        training_precision: str = "32",
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        check_range("lambda_", lambda_, 0.0, 1.0)
        betas = check_betas("betas", betas)
        checks = {
            "width": width >= 1,
            "adversarial_weight": adversarial_weight >= 0,
            "contextual_weight": contextual_weight >= 0,
            "latent_weight": latent_weight >= 0,
            "lr": lr > 0,
            "critic_steps": critic_steps >= 1,
            "critic_lr_ratio": critic_lr_ratio > 0,
            "batch_size": batch_size is None or batch_size >= 1,
            "anomaly_map_sigma": anomaly_map_sigma > 0,
        }
        check_arguments(checks, locals())
        if pre_processor is True:
            pre_processor = tanh_range_pre_processor(tuple(input_size))
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        size = self.input_size or tuple(input_size)  # a custom pre-processor decides what the networks see
        self.model = SkipganomalyModel(
            input_size=size,
            width=width,
            blocks=self.blocks,
            lambda_=lambda_,
            anomaly_map_sigma=anomaly_map_sigma,
        )
        self.configure_speed(channels_last, training_precision)
        self.generator_loss = GeneratorLoss(adversarial_weight, contextual_weight, latent_weight)
        self.discriminator_loss = DiscriminatorLoss()
        self.lr = lr
        self.betas = betas
        self.critic_steps = critic_steps
        self.critic_lr_ratio = critic_lr_ratio
        self.batch_size = batch_size
        self.init_gan_training()

    def configure_optimizers(self) -> list[optim.Optimizer]:
        """Adam for G, Adam for D (both papers: lr 2e-4 each, betas (0.5, 0.999))."""
        return [
            optim.Adam(self.model.generator.parameters(), lr=self.lr, betas=self.betas),
            optim.Adam(self.model.critic.parameters(), lr=self.lr * self.critic_lr_ratio, betas=self.betas),
        ]

    def training_step(self, batch: Batch, batch_idx: int) -> STEP_OUTPUT:
        """One generator update, then ``critic_steps`` discriminator updates, on the same batch."""
        del batch_idx
        model = self.model
        model.check_images(batch.image)
        images = self.in_memory_format(batch.image)
        with self.training_autocast(images):  # G(x) once: the generator's loss, then the discriminator's (detached)
            reconstructions = model.generator(images)

        def generator_loss() -> torch.Tensor:
            fake_logits, fake_features = model.critic(reconstructions)
            _, real_features = model.critic(images)
            return self.generator_loss(images, reconstructions, fake_logits, real_features.detach(), fake_features)

        def critic_loss() -> torch.Tensor:
            real_logits, _ = model.critic(images)
            fake_logits, _ = model.critic(reconstructions.detach())
            return self.discriminator_loss(real_logits, fake_logits)

        losses = self.adversarial_step(GENERATOR, generator_loss, images)
        for _ in range(self.critic_steps):
            critic = self.adversarial_step(CRITIC, critic_loss, images)["critic_loss"]
        if critic.item() < DISCRIMINATOR_RESET_LOSS:
            model.critic.apply(_reset_parameters)
        self.end_training_batch()
        return {"loss": losses["generator_loss"]}


def _reset_parameters(module: nn.Module) -> None:
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
