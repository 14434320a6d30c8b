"""Skip-GANomaly networks (Akçay et al., IJCNN 2019): a U-Net generator and DCGAN's discriminator.

The U-Net goes down to 4x4 and back up, each decoder level fed the encoder level of its size. How a level halves
and doubles its maps is a :class:`UnetBlocks` pair: Skip-GANomaly's 4x4 stride-2 convolutions down and
transposed convolutions up (:data:`SKIP_GANOMALY_BLOCKS`), or SAGAN's attention blocks
(:data:`anomalib_cbigan.models.sagan.torch_model.SAGAN_BLOCKS`).

The discriminator is DCGAN's encoder (as in both papers); its last feature map is ``f(x)`` of the latent loss
and of the anomaly score. Eval mode returns ``InferenceBatch(pred_score=A(x), anomaly_map=...)`` with
``A(x) = lambda * |x - G(x)|_1 + (1 - lambda) * |f(x) - f(G(x))|_2^2`` (both papers' score, lambda = 0.9) and
the map the per-pixel reconstruction error, smoothed.

Example:
    >>> import torch
    >>> model = SkipganomalyModel(input_size=(64, 64)).eval()
    >>> result = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    >>> tuple(result.pred_score.shape), tuple(result.anomaly_map.shape)
    ((2,), (2, 1, 64, 64))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from anomalib.data import InferenceBatch
from anomalib.models.components.filters import GaussianBlur2d
from torch import nn

from anomalib_cbigan.models.gan_training import check_rgb_batch

SMALLEST_MAP = 4  # the U-Net and the discriminator stop halving at 4x4


def _levels(input_size: tuple[int, int]) -> int:
    height, width = input_size
    if height != width or height < 2 * SMALLEST_MAP or height & (height - 1):
        msg = f"input_size must be square with a power-of-two side of at least {2 * SMALLEST_MAP}, got {input_size}"
        raise ValueError(msg)
    return int(math.log2(height // SMALLEST_MAP))


def strided_down(in_channels: int, out_channels: int, *, norm: bool = True) -> nn.Sequential:
    """Halve the size: 4x4 stride-2 convolution, batch norm (unless the first level), LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels) if norm else nn.Identity(),
        nn.LeakyReLU(0.2),
    )


def transposed_up(in_channels: int, out_channels: int) -> nn.Sequential:
    """Double the size: 4x4 stride-2 transposed convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class UnetBlocks(NamedTuple):
    """How one U-Net level goes down (``down(in, out, norm=...)``) and up (``up(in, out)``), and whose they are."""

    name: str
    down: Callable[..., nn.Module]
    up: Callable[[int, int], nn.Module]


SKIP_GANOMALY_BLOCKS = UnetBlocks("Skip-GANomaly", strided_down, transposed_up)


def _widths(levels: int, width: int) -> list[int]:
    return [min(width * 2**level, 8 * width) for level in range(levels)]


class UnetGenerator(nn.Module):
    """x -> G(x): encoder down to 4x4, decoder back up, each decoder level fed the encoder level of its size."""

    def __init__(self, input_size: tuple[int, int], width: int = 64, blocks: UnetBlocks = SKIP_GANOMALY_BLOCKS) -> None:
        super().__init__()
        widths = _widths(_levels(input_size), width)
        self.down = nn.ModuleList(
            blocks.down(3 if index == 0 else widths[index - 1], channels, norm=index > 0)
            for index, channels in enumerate(widths)
        )
        # Up from the bottleneck; every later level also takes the skip of its size (hence 2x the channels in).
        outputs = [*widths[-2::-1], width]
        self.up = nn.ModuleList(
            blocks.up(widths[-1] if index == 0 else 2 * outputs[index - 1], channels)
            for index, channels in enumerate(outputs)
        )
        self.to_image = nn.Sequential(nn.Conv2d(width, 3, kernel_size=3, padding=1), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``images`` (in [-1, 1])."""
        skips = []
        x = images
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself is the decoder's input, not a skip
        for index, block in enumerate(self.up):
            x = block(x if index == 0 else torch.cat([x, skips.pop()], dim=1))
        return self.to_image(x)


class Discriminator(nn.Module):
    """DCGAN encoder to a 4x4 feature map ``f(x)``, then a 4x4 convolution to one real/fake logit."""

    def __init__(self, input_size: tuple[int, int], width: int = 64) -> None:
        super().__init__()
        widths = _widths(_levels(input_size), width)
        self.features = nn.Sequential(*(
            strided_down(3 if index == 0 else widths[index - 1], channels, norm=index > 0)
            for index, channels in enumerate(widths)
        ))  # fmt: skip
        self.classifier = nn.Conv2d(widths[-1], 1, kernel_size=SMALLEST_MAP)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logit per image, features f(x))``."""
        features = self.features(images)
        return self.classifier(features).flatten(), features


class SkipganomalyModel(nn.Module):
    """Generator, discriminator and the anomaly score of Skip-GANomaly (or, with SAGAN's blocks, SAGAN).

    Args:
        input_size (tuple[int, int]): Square, power-of-two side (32, 64, 128, 256, ...).
        width (int): Channels of the first level (doubling per level, at most 8x). Defaults to ``64``.
        blocks (UnetBlocks): The generator's down and up blocks. Defaults to :data:`SKIP_GANOMALY_BLOCKS`.
        lambda_ (float): Weight of the reconstruction term in the score. Defaults to ``0.9`` (both papers).
        anomaly_map_sigma (float): Gaussian smoothing of the map, in pixels. Defaults to ``4``.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (64, 64),
        width: int = 64,
        blocks: UnetBlocks = SKIP_GANOMALY_BLOCKS,
        *,
        lambda_: float = 0.9,
        anomaly_map_sigma: float = 4.0,
    ) -> None:
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.name = blocks.name
        self.generator = UnetGenerator(self.input_size, width, blocks)
        # Called the critic across this package (the reliability tests and the training loop reach it by that name).
        self.critic = Discriminator(self.input_size, width)
        self.lambda_ = lambda_
        kernel = 2 * math.ceil(3 * anomaly_map_sigma) + 1
        self.blur = GaussianBlur2d(kernel_size=(kernel, kernel), sigma=(anomaly_map_sigma, anomaly_map_sigma))

    def check_images(self, images: torch.Tensor) -> None:
        """Raise a clear error for input the networks cannot take."""
        check_rgb_batch(images, self.name, dtype=next(self.parameters()).dtype)
        if tuple(images.shape[-2:]) != self.input_size:
            msg = (
                f"{self.name} was built for {self.input_size[0]}x{self.input_size[1]} images, got "
                f"{images.shape[-2]}x{images.shape[-1]}. Resize in the pre-processor (input_size)."
            )
            raise ValueError(msg)

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), G(x))`` after checking the input (the latent the score compares, and the reconstruction)."""
        self.check_images(images)
        return self.critic(images)[1], self.generator(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor | InferenceBatch:
        """``G(x)`` in training; ``InferenceBatch`` in eval mode."""
        self.check_images(images)
        reconstruction = self.generator(images)
        if self.training:
            return reconstruction
        error = (images - reconstruction).abs()
        _, real_features = self.critic(images)
        _, fake_features = self.critic(reconstruction)
        latent = (real_features - fake_features).pow(2).flatten(1).mean(dim=1)
        score = self.lambda_ * error.flatten(1).mean(dim=1) + (1 - self.lambda_) * latent
        return InferenceBatch(pred_score=score, anomaly_map=self.blur(error.mean(dim=1, keepdim=True)))
