"""PyTorch model of CBiGAN: encoder E, generator G and joint critic D(x, z).

The layer plan follows the official TensorFlow code (fabiocarrara/cbigan-ad,
``model.py``) and the paper's Fig. 3: residual blocks with a 1x1 convolution shortcut,
LeakyReLU(0.2), bilinear up-sampling in G and 2x2 average pooling in E and D, widths
``(1, 2, 3, 4, 8, 16) * channels``. As in that code, the convolutions and dense layers
before an activation have no bias (its ``use_bias = not bn`` is ``False`` for the default
``bn='none'``); the last convolution of each block and the output layers do.

Depth follows the input size: G starts from a 2-pixel-high map (for square inputs
2x2, as in the official code) and up-samples ``log2(min(H, W) / 2)`` times, adding blocks
beyond the official six where needed, so 64x64 texture patches and 128x128 objects use the
same code. E and D always pool five times.

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.cbigan.torch_model import CbiganModel
    >>> model = CbiganModel(input_size=(64, 64)).eval()
    >>> out = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    >>> out.pred_score.shape, out.anomaly_map.shape
    (torch.Size([2]), torch.Size([2, 1, 64, 64]))
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from anomalib.data import InferenceBatch
from anomalib.data.utils.tiler import Tiler
from anomalib.models.components.filters import GaussianBlur2d
from torch import nn

from anomalib_cbigan.models.gan_training import check_rgb_batch
from anomalib_cbigan.models.tiling import EdgeAlignedTiler

WIDTH_MULTIPLIERS = (1, 2, 3, 4, 8, 16)
NUM_POOLINGS = len(WIDTH_MULTIPLIERS) - 1
FEATURE_LAYERS = ("image_stem", "joint")


class CriticOutput(NamedTuple):
    """What the critic returns: the Wasserstein score and the features ``f_D``."""

    score: torch.Tensor
    features: torch.Tensor


def check_input_size(input_size: tuple[int, int]) -> tuple[int, int]:
    """Return the generator's start size and number of up-samplings for ``input_size``.

    Raises:
        ValueError: if the architecture cannot produce exactly ``input_size``.

    Example:
        >>> check_input_size((128, 128))
        ((2, 2), 6)
    """
    height, width = int(input_size[0]), int(input_size[1])
    step = 2**NUM_POOLINGS
    shorter = min(height, width)
    hint = "Resize to a supported size, e.g. 64x64 or 128x128 (input_size / the pre-processor's Resize)."
    if shorter < step or height % step or width % step:
        msg = f"CBiGAN cannot take input size {height}x{width}: both sides must be multiples of {step}. {hint}"
        raise ValueError(msg)
    if shorter & (shorter - 1):
        msg = f"CBiGAN cannot take input size {height}x{width}: the shorter side must be a power of two. {hint}"
        raise ValueError(msg)
    upsamplings = int(math.log2(shorter)) - 1
    scale = 2**upsamplings
    if height % scale or width % scale:
        msg = (
            f"CBiGAN cannot take input size {height}x{width}: both sides must be multiples of {scale} "
            f"for the generator to reproduce them. {hint}"
        )
        raise ValueError(msg)
    return (height // scale, width // scale), upsamplings


def _leaky_relu(negative_slope: float) -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope)


def glorot_uniform_(module: nn.Module) -> None:
    """Keras' default initialisation for every convolution and dense layer of ``module`` (official ``model.py``).

    Glorot (Xavier) uniform weights, limit ``sqrt(6 / (fan_in + fan_out))``, and zero biases: the official
    code's layers get no ``kernel_initializer`` (its ``he_normal`` is commented out), so Keras' default applies.

    Example:
        >>> from torch import nn
        >>> layer = nn.Linear(300, 100)
        >>> glorot_uniform_(layer)
        >>> float(layer.weight.detach().abs().max()) <= (6 / 400) ** 0.5, float(layer.bias.detach().abs().max())
        (True, 0.0)
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def he_normal_(module: nn.Module) -> None:
    """Keras' ``he_normal`` for every convolution and dense layer of ``module``.

    A normal truncated at two standard deviations, scaled so that the weights' standard deviation
    is ``sqrt(2 / fan_in)``; biases zero. An earlier official ``model.py`` used it; its HEAD has it
    commented out ("reverted default kernel init"), see :func:`glorot_uniform_`.

    Example:
        >>> from torch import nn
        >>> layer = nn.Linear(2000, 500)
        >>> he_normal_(layer)
        >>> round(float(layer.weight.std()) / (2 / 2000) ** 0.5, 1), float(layer.bias.abs().max())
        (1.0, 0.0)
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            fan_in = layer.weight[0].numel()
            # 0.8796 is the standard deviation of a unit normal truncated at +-2 (Keras divides by it too).
            std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
            nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


INITIALISERS = {"glorot_uniform": glorot_uniform_, "he_normal": he_normal_}
INITIALISATIONS = (*INITIALISERS, "torch")  # "torch": PyTorch's own defaults, left as the layers drew them


class ResidualBlock(nn.Module):
    """Residual block of the official code: 1x1 shortcut; 3x3, act, 3x3, act, 1x1; add; act.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        upsample (bool): Up-sample x2 (bilinear) before the block (generator blocks).
        pool (bool): 2x2 average pooling after the block (encoder and critic blocks).
        negative_slope (float): LeakyReLU slope.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        upsample: bool = False,
        pool: bool = False,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.pool = pool
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.body = nn.Sequential(
            _leaky_relu(negative_slope),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _leaky_relu(negative_slope),
            nn.Conv2d(out_channels, out_channels, 1),
        )
        self.act = _leaky_relu(negative_slope)

    def forward_with_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the block output and the output of its first 3x3 convolution."""
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        stem = self.conv1(x)
        out = self.act(self.body(stem) + self.shortcut(x))
        if self.pool:
            out = F.avg_pool2d(out, 2)
        return out, stem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_stem(x)[0]


def _image_path(channels: int, negative_slope: float) -> nn.ModuleList:
    """The six down-sampling blocks shared in shape (not weights) by E and D."""
    widths = [m * channels for m in WIDTH_MULTIPLIERS]
    blocks, in_channels = [], 3
    for index, width in enumerate(widths):
        blocks.append(ResidualBlock(in_channels, width, pool=index < NUM_POOLINGS, negative_slope=negative_slope))
        in_channels = width
    return nn.ModuleList(blocks)


class Encoder(nn.Module):
    """E: image in [-1, 1] -> latent vector.

    Args:
        input_size (tuple[int, int]): Image height and width.
        latent_dim (int): Latent size.
        channels (int): Width multiplier.
        negative_slope (float): LeakyReLU slope.
    """

    def __init__(self, input_size: tuple[int, int], latent_dim: int, channels: int, negative_slope: float) -> None:
        super().__init__()
        self.blocks = _image_path(channels, negative_slope)
        flat = WIDTH_MULTIPLIERS[-1] * channels * (input_size[0] >> NUM_POOLINGS) * (input_size[1] >> NUM_POOLINGS)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, WIDTH_MULTIPLIERS[-1] * channels, bias=False),
            _leaky_relu(negative_slope),
            nn.Linear(WIDTH_MULTIPLIERS[-1] * channels, latent_dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class Generator(nn.Module):
    """G: latent vector -> image in [-1, 1] (tanh).

    Args:
        input_size (tuple[int, int]): Image height and width to produce.
        latent_dim (int): Latent size.
        channels (int): Width multiplier.
        negative_slope (float): LeakyReLU slope.
    """

    def __init__(self, input_size: tuple[int, int], latent_dim: int, channels: int, negative_slope: float) -> None:
        super().__init__()
        self.start_size, upsamplings = check_input_size(input_size)
        widths = [m * channels for m in reversed(WIDTH_MULTIPLIERS)]
        widths += [channels] * max(0, upsamplings - len(widths))  # inputs larger than 128 px
        self.start_channels = widths[0]
        self.project = nn.Linear(latent_dim, widths[0] * self.start_size[0] * self.start_size[1], bias=False)
        first_upsampling = len(widths) - upsamplings  # the last `upsamplings` blocks up-sample
        blocks, in_channels = [], widths[0]
        for index, width in enumerate(widths):
            blocks.append(
                ResidualBlock(in_channels, width, upsample=index >= first_upsampling, negative_slope=negative_slope),
            )
            in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(in_channels, 3, 1), nn.Tanh())

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.project(latent).view(-1, self.start_channels, *self.start_size)
        return self.to_image(self.blocks(x))


class Critic(nn.Module):
    """D(x, z): Wasserstein critic on (image, latent) pairs; no sigmoid.

    Args:
        input_size (tuple[int, int]): Image height and width.
        latent_dim (int): Latent size.
        channels (int): Width multiplier.
        negative_slope (float): LeakyReLU slope.
        feature_layer (str): Which layer gives ``f_D`` for the anomaly score:
            ``"image_stem"`` (the first 3x3 convolution of the image path, the layer the
            official code's ``discriminator.layers[-65]`` selects) or ``"joint"`` (the
            hidden layer after concatenating image and latent paths).
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        latent_dim: int,
        channels: int,
        negative_slope: float,
        feature_layer: str = "image_stem",
    ) -> None:
        super().__init__()
        if feature_layer not in FEATURE_LAYERS:
            msg = f"feature_layer must be one of {FEATURE_LAYERS}, got {feature_layer!r}"
            raise ValueError(msg)
        self.feature_layer = feature_layer
        self.image_blocks = _image_path(channels, negative_slope)
        self.latent_path = nn.Sequential(
            nn.Linear(latent_dim, 512, bias=False),
            _leaky_relu(negative_slope),
            nn.Linear(512, 512, bias=False),
            _leaky_relu(negative_slope),
            nn.Linear(512, 512, bias=False),
            _leaky_relu(negative_slope),
        )
        hidden = WIDTH_MULTIPLIERS[-1] * channels
        flat = hidden * (input_size[0] >> NUM_POOLINGS) * (input_size[1] >> NUM_POOLINGS)
        self.joint = nn.Sequential(nn.Linear(flat + 512, hidden, bias=False), _leaky_relu(negative_slope))
        self.score = nn.Linear(hidden, 1)

    def forward(self, images: torch.Tensor, latent: torch.Tensor) -> CriticOutput:
        x, stem = self.image_blocks[0].forward_with_stem(images)
        for block in self.image_blocks[1:]:
            x = block(x)
        joint = self.joint(torch.cat([x.flatten(1), self.latent_path(latent)], dim=1))
        features = stem.flatten(1) if self.feature_layer == "image_stem" else joint
        return CriticOutput(score=self.score(joint).squeeze(1), features=features)


class CbiganModel(nn.Module):
    """CBiGAN's three networks and its anomaly score.

    In training mode ``forward`` returns ``(E(x), G(E(x)))``; in eval mode it returns
    ``InferenceBatch(pred_score=A(x), anomaly_map=...)`` with

    ``A(x) = (1 - lambda) * |x - G(E(x))|_1 + lambda * |f_D(x, E(x)) - f_D(G(E(x)), E(x))|_1``

    (per-image sums, as in the official ``score.py``) and the anomaly map the per-pixel
    L1 reconstruction error summed over colour channels, smoothed by a Gaussian.

    Args:
        input_size (tuple[int, int]): Image height and width.
        latent_dim (int): Latent size. Defaults to ``64``.
        channels (int): Width multiplier. Defaults to ``3`` (official code).
        lambda_ (float): Weight of the critic-feature term in the score. Defaults to ``0.1``.
        feature_layer (str): ``f_D`` layer, see :class:`Critic`. Defaults to ``"image_stem"``.
        anomaly_map_sigma (float): Gaussian smoothing of the map, in pixels. Defaults to ``4``.
        negative_slope (float): LeakyReLU slope. Defaults to ``0.2``.
        tile_images (bool): Score images larger than ``input_size`` as non-overlapping
            ``input_size`` tiles, the last on a side not a multiple of the tile ending at the edge
            (:class:`~anomalib_cbigan.models.tiling.EdgeAlignedTiler`): the image score is the maximum tile
            score and the tile maps are stitched into one map (the paper's texture protocol).
            Defaults to ``False``. anomalib's ``TilerConfigurationCallback`` sets ``tiler`` too.
        init (str): Weight initialisation: ``"glorot_uniform"`` (Keras' default, the official code's, see
            :func:`glorot_uniform_`), ``"he_normal"`` (:func:`he_normal_`) or ``"torch"`` (PyTorch's defaults).
            Defaults to ``"glorot_uniform"``.
        weight_average (bool): Keep an exponential moving average of E's and G's weights
            (:meth:`update_weight_average`) and score with it in eval mode, as the official code evaluates.
            Defaults to ``False``.
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        latent_dim: int = 64,
        channels: int = 3,
        lambda_: float = 0.1,
        feature_layer: str = "image_stem",
        anomaly_map_sigma: float = 4.0,
        negative_slope: float = 0.2,
        tile_images: bool = False,
        init: str = "glorot_uniform",
        weight_average: bool = False,
    ) -> None:
        super().__init__()
        if init not in INITIALISATIONS:
            msg = f"init must be one of {INITIALISATIONS}, got {init!r}"
            raise ValueError(msg)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.tiler: Tiler | None = EdgeAlignedTiler(self.input_size) if tile_images else None
        check_input_size(self.input_size)
        self.latent_dim = latent_dim
        self.lambda_ = lambda_
        self.encoder = Encoder(self.input_size, latent_dim, channels, negative_slope)
        self.generator = Generator(self.input_size, latent_dim, channels, negative_slope)
        self.critic = Critic(self.input_size, latent_dim, channels, negative_slope, feature_layer)
        if init in INITIALISERS:
            INITIALISERS[init](self)
        # The averaged E and G (same weights until the first update) score in eval mode; never trained directly.
        self.average: nn.ModuleDict | None = None
        if weight_average:
            averaged = {"encoder": copy.deepcopy(self.encoder), "generator": copy.deepcopy(self.generator)}
            self.average = nn.ModuleDict(averaged)
            self.average.requires_grad_(False)
            self.register_buffer("average_updates", torch.zeros((), dtype=torch.long))
        kernel = 2 * math.ceil(3 * anomaly_map_sigma) + 1
        self.blur = GaussianBlur2d(kernel_size=(kernel, kernel), sigma=(anomaly_map_sigma, anomaly_map_sigma))

    def check_images(self, images: torch.Tensor) -> None:
        """Raise a clear error for input the networks cannot take."""
        check_rgb_batch(images, "CBiGAN", dtype=next(self.parameters()).dtype)
        if tuple(images.shape[-2:]) != self.input_size:
            msg = (
                f"CBiGAN was built for {self.input_size[0]}x{self.input_size[1]} images, got "
                f"{images.shape[-2]}x{images.shape[-1]}. Resize in the pre-processor (input_size), or, to score "
                "larger images tile by tile (tile_images=True), train on input_size crops."
            )
            raise ValueError(msg)

    @torch.no_grad()
    def update_weight_average(self, decay: float) -> None:
        """``average <- decay * average + (1 - decay) * weights`` for E and G (TensorFlow's
        ``ExponentialMovingAverage``, the official ``train.py``): the first update copies the weights."""
        if self.average is None:
            msg = "update_weight_average needs a model built with weight_average=True"
            raise RuntimeError(msg)
        weight = 1.0 if int(self.average_updates) == 0 else 1.0 - decay
        for name in ("encoder", "generator"):
            averaged = list(self.average[name].parameters())
            torch._foreach_lerp_(averaged, list(getattr(self, name).parameters()), weight)  # noqa: SLF001
        self.average_updates += 1

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(E(x), G(E(x)))`` after checking the input (with the averaged E and G in eval mode, if kept)."""
        self.check_images(images)
        encoder, generator = self.encoder, self.generator
        if self.average is not None and not self.training:
            encoder, generator = self.average["encoder"], self.average["generator"]
        latent = encoder(images)
        return latent, generator(latent)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | InferenceBatch:
        """Reconstruct (training) or score (eval) a batch of images in [-1, 1]."""
        if self.training:
            return self.reconstruct(images)
        if self.tiler is not None:
            check_rgb_batch(images, "CBiGAN", dtype=next(self.parameters()).dtype)  # before the tiler reshapes it
            if images.shape[-2] < self.input_size[0] or images.shape[-1] < self.input_size[1]:
                msg = (
                    f"Tile size {tuple(self.input_size)} exceeds image size {tuple(images.shape[-2:])}: CBiGAN scores "
                    "images tile by tile (tile_images=True), so give it images at least a tile large; to export it, "
                    "pass the images' size (anomalib export --input_size \"[H, W]\")."
                )
                raise ValueError(msg)
            tiles = self.tiler.tile(images)
            scored = self.score(tiles)
            return InferenceBatch(
                pred_score=scored.pred_score.view(images.shape[0], -1).amax(dim=1),
                anomaly_map=self.tiler.untile(scored.anomaly_map),
            )
        return self.score(images)

    def score(self, images: torch.Tensor) -> InferenceBatch:
        """``A(x)`` and the anomaly map of ``input_size`` images."""
        latent, reconstruction = self.reconstruct(images)
        pixel_error = (images - reconstruction).abs()
        reconstruction_score = pixel_error.flatten(1).sum(dim=1)
        real_features = self.critic(images, latent).features
        fake_features = self.critic(reconstruction, latent).features
        feature_score = (real_features - fake_features).abs().flatten(1).sum(dim=1)
        pred_score = (1 - self.lambda_) * reconstruction_score + self.lambda_ * feature_score
        anomaly_map = self.blur(pixel_error.sum(dim=1, keepdim=True))
        return InferenceBatch(pred_score=pred_score, anomaly_map=anomaly_map)
