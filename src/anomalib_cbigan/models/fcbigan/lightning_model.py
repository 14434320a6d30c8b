"""FCBiGAN: Generative Adversarial Networks and Real-Time Anomaly Detection in Texture Images.

A fully convolutional BiGAN trained with least-squares losses and a reconstruction penalty
on E, on random 48x48 patches; at test time it scores every pixel of a full-resolution
image in one pass (reconstruction error and shift-and-stitch critic score, z-scored on
normal images, fused, mean-filtered).

Example:
    >>> from anomalib.data import MVTecAD
    >>> from anomalib.engine import Engine
    >>> from anomalib_cbigan import Fcbigan
    >>> model = Fcbigan(patch_size=48)
    >>> engine = Engine(max_epochs=30)
    >>> engine.fit(model, datamodule=MVTecAD(category="carpet", train_batch_size=8))  # doctest: +SKIP

Paper:
    S. Peccia, "Generative Adversarial Networks and Real-Time Anomaly Detection in Texture
    Images", MSc thesis (executive summary), Politecnico di Milano, 2021. No public code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import optim
from torch.utils.data import DataLoader

from anomalib_cbigan.models.gan_module import CRITIC, GENERATOR, LossAndLogs, OneClassGanMixin, tanh_range_pre_processor
from anomalib_cbigan.models.gan_training import adam, check_arguments, check_betas, check_range, joint_call

from .anomaly_map import FUSIONS
from .loss import critic_loss, encoder_loss, generator_loss
from anomalib_cbigan.models.patch_sampler import sample_patches
from .torch_model import FcbiganModel

logger = logging.getLogger(__name__)


class Fcbigan(OneClassGanMixin, AnomalibModule):
    """FCBiGAN Lightning module: patch training, normal-score statistics, full-image scoring.

    Each training batch of full images yields ``ceil(patches_per_epoch / training images)``
    random patches per image (flips, 90-degree rotations), used in mini-batches of
    ``patch_batch_size``: a D update on each, an E/G update after every ``critic_steps``.
    Before each validation (and a test of a model whose statistics are stale) the z-score
    statistics are re-estimated on the full training images, which are all normal.

    Args:
        input_size (Sequence[int] | None): Resize images to this (height, width) first;
            ``None`` (default) scores the images at their own resolution, as the thesis does.
        patch_size (int): Training patch side, a multiple of 8. Defaults to ``48``.
        patches_per_epoch (int): Patches drawn per epoch. Defaults to ``3000`` (chosen on validation for
            anomalib's budget of a few epochs on a CPU, ``benchmarks/sweeps/cpu_defaults.yaml``; the thesis: 12000).
        patch_batch_size (int): Patches per optimiser step. Defaults to ``64``.
        latent_dim (int): Channels of the latent map. Defaults to ``64``.
        widths (Sequence[int]): E/G channels per scale. Defaults to ``(16, 32, 64)``.
        critic_widths (Sequence[int]): D's strided channels. Defaults to ``(8, 16, 32)``.
        latent_channels (int): Channels of z inside D. Defaults to ``8``.
        reconstruction_weight (float): ``lambda`` of the reconstruction penalty. Defaults to ``1``.
        lr (float): Adam learning rate. Defaults to ``2e-4``.
        betas (Sequence[float]): Adam betas of both optimisers. Defaults to ``(0.5, 0.999)``.
        critic_steps (int): D updates per E/G update. Defaults to ``1``.
        critic_lr_ratio (float): D's learning rate over E's and G's (``lr``; TTUR, Heusel et al. 2017).
            Defaults to ``1``.
        fusion (str): ``"max"`` (thesis results), ``"linear"`` or ``"mahalanobis"``.
        fusion_weight (float): ``L_D``'s weight in the linear fusion. Defaults to ``0.5``.
        mean_filter_size (int): Box filter side on the fused map. Defaults to ``48``.
        batch_size (int | None): Full images per training batch; ``None`` keeps the
            datamodule's. Defaults to ``None``.
        channels_last (bool): Networks and patches in ``channels_last`` memory format, same numbers
            (``benchmarks/training_speed.py`` times both). Defaults to ``True``.
        training_precision (str): ``"32"`` or ``"bf16-mixed"`` (bf16 autocast of the training steps;
            scoring stays float32). Defaults to ``"32"``.
        fused_steps (bool): Fewer, larger operator calls per training step, the same losses to float32 rounding:
            each network called once on the pairs it scores together (D on real and generated pairs, G on ``z``
            and ``E(x)``) and fused Adam. ``False``: one call per pair and the per-parameter Adam.
            Defaults to ``True``.
        pre_processor, post_processor, evaluator, visualizer: as for every anomalib model.

    Example:
        >>> from anomalib_cbigan import Fcbigan
        >>> Fcbigan(fusion="mahalanobis").model.fusion
        'mahalanobis'
    """

    # The thesis's settings (patches, fusion, filter) and DCGAN's optimiser, which the thesis does not give.
    paper_settings: ClassVar[dict[str, Any]] = {
        "input_size": None, "patch_size": 48, "patches_per_epoch": 12000, "patch_batch_size": 64, "latent_dim": 64,
        "reconstruction_weight": 1.0, "lr": 2e-4, "betas": (0.5, 0.999), "critic_steps": 1, "critic_lr_ratio": 1.0,
        "fusion": "max", "mean_filter_size": 48,
    }  # fmt: skip

    def __init__(
        self,
        input_size: Sequence[int] | None = None,
        patch_size: int = 48,
        patches_per_epoch: int = 3000,
        patch_batch_size: int = 64,
        latent_dim: int = 64,
        widths: Sequence[int] = (16, 32, 64),
        critic_widths: Sequence[int] = (8, 16, 32),
        latent_channels: int = 8,
        reconstruction_weight: float = 1.0,
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        critic_steps: int = 1,
        critic_lr_ratio: float = 1.0,
        fusion: str = "max",
        fusion_weight: float = 0.5,
        mean_filter_size: int = 48,
        batch_size: int | None = None,
        channels_last: bool = True,
        training_precision: str = "32",
        fused_steps: bool = True,
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        check_range("fusion_weight", fusion_weight, 0.0, 1.0)
        betas = check_betas("betas", betas)
        checks = {
            "patches_per_epoch": patches_per_epoch >= 1,
            "patch_batch_size": patch_batch_size >= 1,
            "latent_dim": latent_dim >= 1,
            "latent_channels": latent_channels >= 1,
            "reconstruction_weight": reconstruction_weight >= 0,
            "lr": lr > 0,
            "critic_steps": critic_steps >= 1,
            "critic_lr_ratio": critic_lr_ratio > 0,
            "mean_filter_size": mean_filter_size >= 1,
            "batch_size": batch_size is None or batch_size >= 1,
            "widths": len(widths) >= 1 and min(widths) >= 1,
            "critic_widths": len(critic_widths) >= 1 and min(critic_widths) >= 1,
            "fusion": fusion in FUSIONS,
        }
        check_arguments(checks, locals())
        if input_size is not None and (len(input_size) != 2 or min(input_size) < patch_size):
            msg = f"input_size must be (height, width), each at least patch_size={patch_size}; got {input_size}"
            raise ValueError(msg)
        if pre_processor is True:
            pre_processor = self.configure_pre_processor(tuple(input_size) if input_size else None)
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        self.model = FcbiganModel(
            patch_size=patch_size,
            latent_dim=latent_dim,
            widths=tuple(widths),
            critic_widths=tuple(critic_widths),
            latent_channels=latent_channels,
            fusion=fusion,
            fusion_weight=fusion_weight,
            mean_filter_size=mean_filter_size,
        )
        self.configure_speed(channels_last, training_precision)
        self.fused_steps = fused_steps
        self.patches_per_epoch = patches_per_epoch
        self.patch_batch_size = patch_batch_size
        self.reconstruction_weight = reconstruction_weight
        self.lr = lr
        self.betas = betas
        self.critic_steps = critic_steps
        self.critic_lr_ratio = critic_lr_ratio
        self.batch_size = batch_size
        self.init_gan_training()
        # Checkpointed counters besides the image batches trained on: critic updates (paces E/G updates),
        # and the batch count the z-score statistics were estimated at (-1: never).
        self.register_buffer("critic_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("statistics_batch", torch.full((), -1, dtype=torch.long))
        self.critic_updates: torch.Tensor
        self.statistics_batch: torch.Tensor

    @classmethod
    def configure_pre_processor(cls, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """Scale [0, 1] images to [-1, 1]; resize (antialiased; not in exported graphs) only if asked."""
        return tanh_range_pre_processor(image_size)

    def configure_optimizers(self) -> list[optim.Optimizer]:
        """Adam for E and G together, Adam for D (LSGAN/DCGAN settings; the thesis gives none)."""
        generator_params = [*self.model.encoder.parameters(), *self.model.generator.parameters()]
        return [
            adam(generator_params, fused=self.fused_steps, lr=self.lr, betas=self.betas),
            adam(self.model.critic.parameters(), fused=self.fused_steps, lr=self.lr * self.critic_lr_ratio,
                 betas=self.betas),
        ]

    def training_step(self, batch: Batch, batch_idx: int) -> STEP_OUTPUT:
        """Sample patches from the batch's images; a D update on each mini-batch of them, an E/G update after every
        ``critic_steps`` D updates."""
        del batch_idx
        self.model.check_training_images(batch.image)
        patches = sample_patches(batch.image, self.model.patch_size, self.patches_per_image(self.patches_per_epoch))
        for chunk in patches.split(self.patch_batch_size):
            losses = self.train_on_patches(chunk)
        self.end_training_batch()
        return {"loss": losses["critic_loss"]}

    def train_on_patches(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update on ``patches``, then an E/G update every ``critic_steps`` D updates; the losses."""
        patches = self.in_memory_format(patches)
        prior = torch.randn(len(patches), self.model.latent_dim, 1, 1, device=patches.device, dtype=patches.dtype)
        losses = self.adversarial_step(CRITIC, lambda: self._critic_loss(patches, prior), patches)
        self.critic_updates += 1
        if int(self.critic_updates) % self.critic_steps == 0:
            losses |= self.adversarial_step(GENERATOR, lambda: self._generator_loss(patches, prior), patches)
        return losses

    def _critic_loss(self, patches: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """D's least-squares loss on the real and generated pairs (E and G fixed)."""
        model = self.model
        with torch.no_grad():
            encoded, generated = model.encoder(patches), model.generator(prior)
        return critic_loss(*joint_call(model.critic, (patches, encoded), (generated, prior), joint=self.fused_steps))

    def _generator_loss(self, patches: torch.Tensor, prior: torch.Tensor) -> LossAndLogs:
        """G's and E's least-squares losses, E's with the reconstruction penalty; the reconstruction error to log."""
        model = self.model
        encoded = model.encoder(patches)
        reconstruction, generated = joint_call(model.generator, (encoded,), (prior,), joint=self.fused_steps)
        real, fake = joint_call(model.critic, (patches, encoded), (generated, prior), joint=self.fused_steps)
        loss = generator_loss(fake) + encoder_loss(real, patches, reconstruction, self.reconstruction_weight)
        return loss, {"reconstruction_l1": (patches - reconstruction).abs().mean()}

    def divergence_causes(self) -> str:
        """A learning rate too high, or a reconstruction weight out of proportion."""
        return f"learning rate too high ({self.learning_rates()}) or reconstruction_weight={self.reconstruction_weight}"

    def _normal_training_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        datamodule = self.trainer.datamodule
        dataset = datamodule.train_data
        loader = DataLoader(dataset, batch_size=max(1, getattr(datamodule, "eval_batch_size", 8)), shuffle=False,
                            num_workers=0, collate_fn=dataset.collate_fn)  # fmt: skip
        for batch in loader:
            images, _ = self.pre_processor.transform(batch.image.to(self.device), None)
            yield images, batch.gt_label

    def refresh_score_statistics(self) -> None:
        """Re-estimate the z-score statistics on the training images if the networks changed since."""
        if int(self.statistics_batch) == int(self.batches_seen):
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or getattr(datamodule, "train_data", None) is None:
            logger.warning("%s: no training images to estimate score statistics from; keeping the stored ones",
                           self.name)  # fmt: skip
            return
        if not hasattr(datamodule.train_data, "samples"):
            datamodule.setup("fit")
        was_training = self.model.training
        self.model.eval()
        used = self.model.estimate_score_statistics(self._normal_training_batches())
        self.model.train(was_training)
        self.statistics_batch.fill_(int(self.batches_seen))
        logger.info("%s: score statistics from %d normal training images", self.name, used)

    def on_validation_start(self) -> None:
        """Statistics first: the post-processor learns thresholds from the fused scores."""
        self.refresh_score_statistics()

    def on_test_start(self) -> None:
        """A model validated after its last training step already has current statistics."""
        self.refresh_score_statistics()
