"""CBiGAN: Combining GANs and Autoencoders for Efficient Anomaly Detection.

A Wasserstein BiGAN (encoder E, generator G, joint critic D(x, z)) whose E/G loss adds
a cycle-consistency term: ``L* = (1 - alpha) * L_adv + alpha * (|x - G(E(x))|_1 +
|z - E(G(z))|_1)``. Scores are ``A(x) = (1 - lambda) * L_R + lambda * L_fD``.

Example:
    >>> from anomalib.data import MVTecAD
    >>> from anomalib.engine import Engine
    >>> from anomalib_cbigan import Cbigan
    >>> model = Cbigan(input_size=(128, 128), alpha=1e-4)
    >>> engine = Engine(max_epochs=50)
    >>> engine.fit(model, datamodule=MVTecAD(category="bottle"))  # doctest: +SKIP
    >>> engine.test(model, datamodule=MVTecAD(category="bottle"))  # doctest: +SKIP

Paper:
    Carrara et al., "Combining GANs and AutoEncoders for Efficient Anomaly Detection",
    ICPR 2020, https://arxiv.org/abs/2011.08102. Official code: fabiocarrara/cbigan-ad.
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
from torch import optim

from anomalib_cbigan.models.gan_module import CRITIC, GENERATOR, LossAndLogs, OneClassGanMixin, tanh_range_pre_processor
from anomalib_cbigan.models.gan_training import (
    adam,
    check_arguments,
    check_betas,
    check_range,
    check_rgb_batch,
    joint_call,
)
from anomalib_cbigan.models.patch_sampler import sample_patches

from .loss import CriticLoss, EncoderGeneratorLoss
from .torch_model import CbiganModel


KERAS_ADAM_EPSILON = 1e-7


def check_tiles_fit(tile: tuple[int, int], image_size: tuple[int, int] | None) -> None:
    """Raise a ``ValueError`` that says what to change if images resized to ``image_size`` (``None``: not
    resized) are smaller than one ``tile`` on a side.

    Example:
        >>> check_tiles_fit((64, 64), (640, 256))  # any aspect ratio whose sides a tile fits
        >>> check_tiles_fit((64, 64), (32, 256))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: tile_images scores images tile by tile, and the pre-processor resizes them to 32x256, ...
    """
    if image_size is None or (image_size[0] >= tile[0] and image_size[1] >= tile[1]):
        return
    height, width = int(image_size[0]), int(image_size[1])
    msg = (
        f"tile_images scores images tile by tile, and the pre-processor resizes them to {height}x{width}, smaller "
        f"than one {tile[0]}x{tile[1]} tile (input_size): resize to at least {max(tile)} px a side, or set "
        f"input_size to a tile that fits (sides multiples of 32), or set tile_images=False to train and score "
        f"whole {height}x{width} images."
    )
    raise ValueError(msg)


class Cbigan(OneClassGanMixin, AnomalibModule):
    """CBiGAN Lightning module: hyper-parameters, optimisers and the alternating GAN steps.

    The defaults are made for what anomalib users give a model on a CPU (15 epochs of a small folder): the paper's
    texture protocol with 64-px patches the model draws itself, five critic steps, alpha 0.1, lr 1e-3 and a moving
    average of E and G (``benchmarks/sweeps/cpu_defaults.yaml``). :meth:`paper` builds the model with the paper's
    settings (objects: ``configs/recipes/cbigan_mvtec_objects.yaml``; the textures' recipe adds ``tile_images``,
    64 px, alpha 1e-5).

    Args:
        input_size (Sequence[int]): Height and width the networks are built for, and the default pre-processor
            resizes to unless ``tile_images``; with ``tile_images``, the side of the training patches and scoring
            tiles, whatever size a custom pre-processor resizes the images to. Defaults to ``(64, 64)`` (the
            paper: 128 for objects).
        latent_dim (int): Latent size. Defaults to ``64``.
        alpha (float): Consistency weight in [0, 1]; ``0`` is EGBAD, ``1`` a double
            autoencoder. Defaults to ``0.1`` (the paper: 1e-4 for objects).
        lambda_ (float): Weight of the critic-feature term of the anomaly score, in [0, 1].
            Defaults to ``0.1``.
        lr (float): Adam learning rate of both optimisers. Defaults to ``1e-3`` (the paper: 1e-4).
        generator_betas (Sequence[float]): Adam betas of E and G. Defaults to ``(0.0, 0.1)``.
        critic_betas (Sequence[float]): Adam betas of D. Defaults to ``(0.0, 0.9)``.
        critic_steps (int): Critic updates per E/G update; each update uses its own batch.
            Defaults to ``5``.
        critic_lr_ratio (float): The critic's learning rate over E's and G's (``lr``): with fewer
            ``critic_steps``, a faster critic (TTUR, Heusel et al. 2017). Defaults to ``1``.
        gp_weight (float): Gradient-penalty weight. Defaults to ``10``.
        penalty_every (int): The gradient penalty on every ``penalty_every``-th critic step only, weighted by
            ``penalty_every`` (lazy regularisation, StyleGAN2), so that the other critic steps skip its double
            backward. Defaults to ``1``: every step.
        batch_size (int | None): Training batch size; ``None`` keeps the datamodule's
            ``train_batch_size`` (MVTecAD's default, 32, is the paper's). Defaults to ``None``.
        channels (int): Width multiplier of all networks. Defaults to ``3`` (official code).
        feature_layer (str): Critic layer used as ``f_D``: ``"image_stem"`` (official code)
            or ``"joint"``. Defaults to ``"image_stem"``.
        anomaly_map_sigma (float): Gaussian smoothing of the anomaly map. Defaults to ``4``.
        tile_images (bool): The paper's texture protocol: train on ``input_size`` crops (the
            datamodule's ``train_augmentations`` or ``patches_per_epoch`` make them), score larger images tile by
            tile (anomalib's ``Tiler``, maximum tile score, stitched map). The default pre-processor then does not
            resize. Defaults to ``True`` (the paper: for textures only).
        patches_per_epoch (int): Train on about this many random ``input_size`` patches of the training images
            an epoch (square ``input_size``; each flipped and rotated by 90 degrees at random, as FCBiGAN's), in
            mini-batches of the loader's batch size, one critic or E/G step each: the texture protocol's crops
            drawn by the model, from any datamodule, and epochs of a set length. ``0`` trains on the loader's
            batches as they are. Defaults to ``2000``.
        channels_last (bool): Networks and training batches in ``channels_last`` memory format, same numbers
            (``benchmarks/training_speed.py`` times both). Defaults to ``True``.
        training_precision (str): ``"32"`` or ``"bf16-mixed"`` (bf16 autocast of the training steps; scoring
            stays float32). Defaults to ``"32"``.
        fused_steps (bool): Fewer, larger operator calls per training step, the same losses to float32 rounding:
            each network called once on the pairs it scores together (critic on real and generated pairs, G on
            ``z`` and ``E(x)``) and fused Adam. ``False``: one call per pair and the per-parameter Adam.
            Defaults to ``True``.
        init (str): Weight initialisation: ``"glorot_uniform"`` (Keras' default, the official code's),
            ``"he_normal"`` or ``"torch"``. Defaults to ``"glorot_uniform"``.
        penalty_pairing (str): Points the gradient penalty interpolates: ``"official"`` (``(x, z)`` with
            ``(G(z), E(x))``, official ``losses.py``) or ``"real_fake"`` (``(x, E(x))`` with ``(G(z), z)``).
            Defaults to ``"official"``.
        weight_average_decay (float): Decay of the exponential moving average of E's and G's weights that
            scores in validation, test and export (official ``train.py``: 0.999); ``0`` scores with the
            trained weights. Defaults to ``0.995`` (the official code's average of 10,000 batches would still be
            the initial networks after a CPU budget).
        weight_average_every (int): Training batches (critic and E/G) between two updates of that average
            (official: 10). Defaults to ``1``.
        pre_processor (PreProcessor | bool): Pre-processor, or ``True`` for the default
            (resize to ``input_size`` unless ``tile_images``, scale to [-1, 1]). With ``tile_images``, its resize
            sets the size of the images the tiles cover (``Cbigan.configure_pre_processor((512, 512))``: images of
            mixed sizes brought to one); without, the size the networks are built for. Defaults to ``True``.
        post_processor (PostProcessor | bool): Defaults to ``True`` (anomalib's
            normalisation and thresholding, also inside exported models).
        evaluator (Evaluator | bool): Defaults to ``True`` (image and pixel AUROC and F1, pixel AUPR and
            AUPRO, and the paper's image maximum balanced accuracy: :func:`~anomalib_cbigan.metrics.default_evaluator`).
        visualizer (Visualizer | bool): Defaults to ``True``.

    Raises:
        ValueError: for a hyper-parameter out of range or an input size the networks cannot take.

    Example:
        >>> from anomalib_cbigan import Cbigan
        >>> model = Cbigan(input_size=(64, 64), alpha=1e-5)
        >>> model.model.input_size
        (64, 64)
    """

    # The paper (objects, Sec. V-B) and the official code's defaults (betas, penalty, initialisation, weight average).
    paper_settings: ClassVar[dict[str, Any]] = {
        "input_size": (128, 128), "latent_dim": 64, "alpha": 1e-4, "lambda_": 0.1, "lr": 1e-4,
        "generator_betas": (0.0, 0.1), "critic_betas": (0.0, 0.9), "critic_steps": 5, "gp_weight": 10.0,
        "critic_lr_ratio": 1.0, "penalty_every": 1,
        "channels": 3, "feature_layer": "image_stem", "tile_images": False, "patches_per_epoch": 0,
        "init": "glorot_uniform", "penalty_pairing": "official", "weight_average_decay": 0.999,
        "weight_average_every": 10,
    }  # fmt: skip

    def __init__(
        self,
        input_size: Sequence[int] = (64, 64),
        latent_dim: int = 64,
        alpha: float = 0.1,
        lambda_: float = 0.1,
        lr: float = 1e-3,
        generator_betas: Sequence[float] = (0.0, 0.1),
        critic_betas: Sequence[float] = (0.0, 0.9),
        critic_steps: int = 5,
        critic_lr_ratio: float = 1.0,
        gp_weight: float = 10.0,
        penalty_every: int = 1,
        batch_size: int | None = None,
        channels: int = 3,
        feature_layer: str = "image_stem",
        anomaly_map_sigma: float = 4.0,
        tile_images: bool = True,
        patches_per_epoch: int = 2000,
        channels_last: bool = True,
        training_precision: str = "32",
        fused_steps: bool = True,
        init: str = "glorot_uniform",
        penalty_pairing: str = "official",
        weight_average_decay: float = 0.995,
        weight_average_every: int = 1,
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        check_range("alpha", alpha, 0.0, 1.0)
        check_range("lambda_", lambda_, 0.0, 1.0)
        generator_betas = check_betas("generator_betas", generator_betas)
        critic_betas = check_betas("critic_betas", critic_betas)
        checks = {
            "lr": lr > 0,
            "latent_dim": latent_dim >= 1,
            "critic_steps": critic_steps >= 1,
            "critic_lr_ratio": critic_lr_ratio > 0,
            "gp_weight": gp_weight >= 0,
            "penalty_every": penalty_every >= 1,
            "channels": channels >= 1,
            "anomaly_map_sigma": anomaly_map_sigma > 0,
            "batch_size": batch_size is None or batch_size >= 1,
            "weight_average_decay": 0 <= weight_average_decay < 1,
            "weight_average_every": weight_average_every >= 1,
            "patches_per_epoch": patches_per_epoch >= 0,
        }
        check_arguments(checks, locals())
        if len(input_size) != 2:
            msg = f"input_size must be (height, width), got {input_size}"
            raise ValueError(msg)
        if patches_per_epoch and input_size[0] != input_size[1]:
            msg = f"patches_per_epoch draws square patches: input_size must be square, got {input_size}"
            raise ValueError(msg)
        if pre_processor is True:
            pre_processor = self.configure_pre_processor(tuple(input_size), resize=not tile_images)
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        if tile_images:  # a pre-processor's resize sets the images' size; patches and tiles stay input_size
            check_tiles_fit(tuple(input_size), self.input_size)
            size = tuple(input_size)
        else:  # a custom pre-processor decides the size the networks see
            size = self.input_size or tuple(input_size)
        self.model = CbiganModel(
            input_size=(int(size[0]), int(size[1])),
            latent_dim=latent_dim,
            channels=channels,
            lambda_=lambda_,
            feature_layer=feature_layer,
            anomaly_map_sigma=anomaly_map_sigma,
            tile_images=tile_images,
            init=init,
            weight_average=weight_average_decay > 0,
        )
        self.configure_speed(channels_last, training_precision)
        self.fused_steps = fused_steps
        self.lr = lr
        self.generator_betas = generator_betas
        self.critic_betas = critic_betas
        self.critic_steps = critic_steps
        self.critic_lr_ratio = critic_lr_ratio
        self.penalty_every = penalty_every
        self.patches_per_epoch = patches_per_epoch
        self.batch_size = batch_size
        self.weight_average_decay = weight_average_decay
        self.weight_average_every = weight_average_every
        self.critic_loss = CriticLoss(gp_weight, penalty_pairing)
        self.generator_loss = EncoderGeneratorLoss(alpha)
        self.init_gan_training()

    @property
    def alpha(self) -> float:
        """Weight of the consistency term (the E/G loss holds it)."""
        return self.generator_loss.alpha

    @classmethod
    def configure_pre_processor(cls, image_size: tuple[int, int] | None = None, *, resize: bool = True) -> PreProcessor:
        """Resize to ``image_size`` (unless ``resize=False``) and scale [0, 1] images to G's tanh range [-1, 1]."""
        return tanh_range_pre_processor((image_size or (64, 64)) if resize else None)

    def configure_optimizers(self) -> list[optim.Optimizer]:
        """Adam for E and G together, Adam for D (paper: lr 1e-4; betas from the official code).

        ``eps=1e-7`` is Keras' (official code): Keras adds it to ``sqrt(v)`` before bias correction, PyTorch
        after, which differs only in the first steps (``benchmarks/reference_parity.py`` measures both).
        """
        generator_params = [*self.model.encoder.parameters(), *self.model.generator.parameters()]
        fused = self.fused_steps
        return [
            adam(generator_params, fused=fused, lr=self.lr, betas=self.generator_betas, eps=KERAS_ADAM_EPSILON),
            adam(self.model.critic.parameters(), fused=fused, lr=self.lr * self.critic_lr_ratio,
                 betas=self.critic_betas, eps=KERAS_ADAM_EPSILON),
        ]  # fmt: skip

    def is_generator_step(self) -> bool:
        """Whether the current batch trains E and G (else D): D, D, ..., D, then E/G."""
        return int(self.batches_seen) % (self.critic_steps + 1) == self.critic_steps

    def training_step(self, batch: Batch, batch_idx: int) -> STEP_OUTPUT:
        """One critic step or one E/G step, alternating as in the official code; with ``patches_per_epoch``, one
        such step on each mini-batch of random patches of the batch's images."""
        del batch_idx
        samples = batch.image
        if self.patches_per_epoch:  # the sampler names images smaller than a patch
            check_rgb_batch(samples, self.name, dtype=next(self.model.parameters()).dtype)
            samples = sample_patches(samples, self.model.input_size[0], self.patches_per_image(self.patches_per_epoch))
        for images in samples.split(len(batch.image)):
            loss = self.train_on_batch(images)
        return {"loss": loss}

    def train_on_batch(self, images: torch.Tensor) -> torch.Tensor:
        """One critic step or one E/G step on ``images`` (``input_size``); its loss."""
        self.model.check_images(images)
        images = self.in_memory_format(images)
        prior = torch.randn(images.shape[0], self.model.latent_dim, device=images.device, dtype=images.dtype)
        side = GENERATOR if self.is_generator_step() else CRITIC
        compute_loss = self._generator_loss if side == GENERATOR else self._critic_loss
        losses = self.adversarial_step(side, lambda: compute_loss(images, prior), images)
        self.end_training_batch()
        return losses[f"{side}_loss"]

    def _generator_loss(self, images: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """``L*_EG``: the adversarial loss of the real and generated pairs, plus the consistency term if ``alpha``."""
        model = self.model
        encoded = model.encoder(images)
        if self.alpha == 0:  # EGBAD: no cycle, no G(E(x))
            generated, cycle = model.generator(prior), None
        else:
            generated, reconstructed = joint_call(model.generator, (prior,), (encoded,), joint=self.fused_steps)
            cycle = (images, reconstructed, prior, model.encoder(generated))
        real, fake = joint_call(model.critic, (images, encoded), (generated, prior), joint=self.fused_steps)
        return self.generator_loss(real.score, fake.score, cycle)

    def critic_steps_before(self) -> int:
        """How many critic steps came before this batch's (D, ..., D, E/G cycles of ``critic_steps`` + 1 batches)."""
        cycles, position = divmod(int(self.batches_seen), self.critic_steps + 1)
        return cycles * self.critic_steps + min(position, self.critic_steps)

    def _critic_loss(self, images: torch.Tensor, prior: torch.Tensor) -> LossAndLogs:
        """The critic's Wasserstein loss with gradient penalty (E and G fixed; on every ``penalty_every``-th critic
        step, weighted by ``penalty_every``), and the penalty to log where it was computed."""
        model = self.model
        with torch.no_grad():
            encoded, generated = model.encoder(images), model.generator(prior)
        penalised = self.critic_steps_before() % self.penalty_every == 0
        loss, penalty = self.critic_loss(model.critic, (images, encoded), (generated, prior), joint=self.fused_steps,
                                         penalty_scale=self.penalty_every if penalised else 0)  # fmt: skip
        return (loss, {"gradient_penalty": penalty}) if penalised else loss

    def divergence_causes(self) -> str:
        """A learning rate too high or a gradient penalty too weak."""
        every = self.penalty_every
        lazy = "" if every == 1 else f", on one critic step in {every}: penalty_every={every}"
        return (f"learning rate too high ({self.learning_rates()}) or gradient penalty too weak "
                f"(gp_weight={self.critic_loss.gp_weight}{lazy})")
