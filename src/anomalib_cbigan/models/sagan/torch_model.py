"""SAGAN's U-Net blocks (Liu et al., ICIP 2021): Skip-GANomaly's generator with attention and separable convolutions.

Each block's convolution is depthwise separable (timm's ``SeparableConv2d``) and followed by a CBAM (timm's
``CbamModule``: channel, then spatial attention); the U-Net goes down by 2x2 max pooling instead of strided
convolution and up by bilinear interpolation instead of transposed convolution. Everything else (the U-Net's
levels and skips, the discriminator, losses and score) is Skip-GANomaly's, as the paper states.

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.skipganomaly.torch_model import SkipganomalyModel
    >>> model = SkipganomalyModel(input_size=(32, 32), width=8, blocks=SAGAN_BLOCKS)
    >>> model.name, tuple(model.generator(torch.rand(1, 3, 32, 32)).shape)
    ('SAGAN', (1, 3, 32, 32))
"""

from __future__ import annotations

from timm.layers import SeparableConv2d
from timm.layers.cbam import CbamModule
from torch import nn

from anomalib_cbigan.models.skipganomaly.torch_model import UnetBlocks


def attention_down(in_channels: int, out_channels: int, *, norm: bool = True) -> nn.Sequential:
    """Halve the size: separable 3x3 convolution, 2x2 max pooling, batch norm (unless the first level), LeakyReLU, CBAM."""
    return nn.Sequential(
        SeparableConv2d(in_channels, out_channels, kernel_size=3),  # timm pads the 3x3 depthwise part only
        nn.MaxPool2d(2),
        nn.BatchNorm2d(out_channels) if norm else nn.Identity(),
        nn.LeakyReLU(0.2),
        CbamModule(out_channels),
    )


def attention_up(in_channels: int, out_channels: int) -> nn.Sequential:
    """Double the size: bilinear up-sampling, separable 3x3 convolution, batch norm, ReLU, CBAM."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        SeparableConv2d(in_channels, out_channels, kernel_size=3),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        CbamModule(out_channels),
    )


SAGAN_BLOCKS = UnetBlocks("SAGAN", attention_down, attention_up)
