"""FCBiGAN's fully convolutional encoder, generator and critic, and its pixel-wise anomaly score.

Every dense layer of a BiGAN is a convolution here (thesis, Sec. 4.1), so the networks take
any image size the strides allow:

* **E** down-samples by ``stride = 2 ** len(widths)`` (8) with 4x4 stride-2 convolutions, then
  a "dense" convolution whose kernel spans the feature map of one training patch
  (``patch_size / stride``, 6 for 48-px patches): a patch gives one latent vector (1x1 map),
  an H x W image a latent *map* of ``(H/8 - 5) x (W/8 - 5)`` vectors, one per 48-px window.
* **G** inverts it: a transposed convolution with the same kernel, then sub-pixel
  convolutions (conv + pixel shuffle, x2 each) back to H x W, tanh output.
* **D(x, z)** brings z to x's spatial size with the same transposed convolution and
  sub-pixel convolutions, concatenates it with x, and runs *valid* (unpadded) strided
  convolutions ending in a layer whose kernel spans what is left of a patch: one prediction
  per 48-px window, i.e. a per-location map on a full image. At test time
  :meth:`Critic.dense_score` gives that prediction for *every* pixel with the
  shift-and-stitch trick (Long et al.'s FCN): strides removed, later kernels dilated
  by the stride before them, which equals evaluating the strided critic at all
  ``stride**2`` shifts of the input and interleaving the results (tested).

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.fcbigan.torch_model import FcbiganModel
    >>> model = FcbiganModel(patch_size=48).eval()
    >>> model(torch.rand(1, 3, 67, 93) * 2 - 1).anomaly_map.shape
    torch.Size([1, 1, 67, 93])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_cbigan.models.gan_training import check_rgb_batch

from .anomaly_map import FUSIONS, ScoreStatistics, fuse_scores, mean_filter, standardize


def _leaky_relu(negative_slope: float) -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope)


def _sub_pixel_up(in_channels: int, out_channels: int, negative_slope: float) -> nn.Sequential:
    """x2 up-sampling by sub-pixel convolution (conv to 4x the channels, then pixel shuffle).

    ICNR initialisation (Aitken et al., 2017): the four sub-pixel kernels of each output channel
    start equal, so at initialisation the layer is a convolution followed by nearest-neighbour
    up-sampling, without the checkerboard pattern a random initialisation starts from.
    """
    conv = nn.Conv2d(in_channels, out_channels * 4, kernel_size=3, padding=1)
    with torch.no_grad():
        kernel = torch.empty(out_channels, in_channels, 3, 3)
        nn.init.kaiming_uniform_(kernel, a=5**0.5)  # nn.Conv2d's own default, for one sub-kernel
        conv.weight.copy_(kernel.repeat_interleave(4, dim=0))
        conv.bias.copy_(conv.bias.view(out_channels, 4)[:, :1].expand(-1, 4).reshape(-1))
    return nn.Sequential(conv, nn.PixelShuffle(2), _leaky_relu(negative_slope))


def _latent_to_image_grid(
    latent_dim: int,
    widths: Sequence[int],
    patch_cells: int,
    negative_slope: float,
) -> nn.Sequential:
    """Latent map -> full-resolution features: transposed "dense" conv, then x2 sub-pixel steps."""
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(latent_dim, widths[-1], kernel_size=patch_cells),
        _leaky_relu(negative_slope),
    ]
    # widths are listed from fine to coarse; going up we walk them backwards, last step keeps widths[0].
    ups = [*reversed(widths), widths[0]]
    layers += [_sub_pixel_up(ups[i], ups[i + 1], negative_slope) for i in range(len(widths))]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """E: image (N, 3, H, W) -> latent map (N, latent_dim, H/stride - k + 1, W/stride - k + 1)."""

    def __init__(self, widths: Sequence[int], latent_dim: int, patch_cells: int, negative_slope: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for width in widths:
            layers += [nn.Conv2d(previous, width, kernel_size=4, stride=2, padding=1), _leaky_relu(negative_slope)]
            previous = width
        layers.append(nn.Conv2d(previous, latent_dim, kernel_size=patch_cells))  # the dense layer, as a conv
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images whose sides are multiples of the stride."""
        return self.layers(images)


class Generator(nn.Module):
    """G: latent map -> image of the size E took it from, in [-1, 1]."""

    def __init__(self, widths: Sequence[int], latent_dim: int, patch_cells: int, negative_slope: float) -> None:
        super().__init__()
        self.features = _latent_to_image_grid(latent_dim, widths, patch_cells, negative_slope)
        self.to_image = nn.Conv2d(widths[0], 3, kernel_size=3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Decode a latent map."""
        return torch.tanh(self.to_image(self.features(latent)))


class Critic(nn.Module):
    """D(x, z): z up-sampled to x's size by sub-pixel convolution, concatenated, valid strided convs.

    Args:
        widths (Sequence[int]): Channels of the strided convolutions (fine to coarse).
        latent_dim (int): Channels of z.
        latent_channels (int): Channels z is brought to before the concatenation.
        patch_size (int): Training patch side; the last kernel spans what is left of it.
        stride (int): E's down-sampling factor (z's cell size in pixels).
        negative_slope (float): LeakyReLU slope.
    """

    def __init__(
        self,
        widths: Sequence[int],
        latent_dim: int,
        latent_channels: int,
        patch_size: int,
        stride: int,
        negative_slope: float,
    ) -> None:
        super().__init__()
        steps = stride.bit_length() - 1
        self.latent_path = _latent_to_image_grid(latent_dim, [latent_channels] * steps, patch_size // stride,
                                                 negative_slope)  # fmt: skip
        layers: list[nn.Module] = []
        previous, side = 3 + latent_channels, patch_size
        for width in widths:
            layers += [nn.Conv2d(previous, width, kernel_size=4, stride=2), _leaky_relu(negative_slope)]
            previous, side = width, (side - 4) // 2 + 1
        if side < 1:
            msg = f"patch_size {patch_size} is too small for a critic with {len(widths)} strided layers"
            raise ValueError(msg)
        layers.append(nn.Conv2d(previous, 1, kernel_size=side))  # the dense output layer, as a conv
        self.joint = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        """Side of the input window one output of the joint path sees."""
        field, dilation = 1, 1
        for layer in self.joint:
            if isinstance(layer, nn.Conv2d):
                field += (layer.kernel_size[0] - 1) * dilation
                dilation *= layer.stride[0]
        return field

    @property
    def output_stride(self) -> int:
        """Input pixels between neighbouring outputs of the strided joint path."""
        stride = 1
        for layer in self.joint:
            if isinstance(layer, nn.Conv2d):
                stride *= layer.stride[0]
        return stride

    def joint_input(self, images: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``[x, up(z)]`` along channels."""
        return torch.cat([images, self.latent_path(latent)], dim=1)

    def forward(self, images: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Strided prediction map (one value per training patch; a map on larger images)."""
        return self.joint(self.joint_input(images, latent))

    def dense_joint(self, joint_input: torch.Tensor) -> torch.Tensor:
        """The joint path evaluated at every pixel offset (shift-and-stitch by dilation).

        Output side is ``input side - receptive_field + 1``; output ``[i, j]`` is the strided
        critic's prediction for the window whose top-left corner is input pixel ``(i, j)``.
        """
        x, dilation = joint_input, 1
        for layer in self.joint:
            if isinstance(layer, nn.Conv2d):
                x = F.conv2d(x, layer.weight, layer.bias, stride=1, padding=0, dilation=dilation)
                dilation *= layer.stride[0]
            else:
                x = layer(x)
        return x

    def dense_score(self, images: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Per-pixel D(x, z): the dense joint path, padded back to the input's size.

        Each prediction is placed at the centre of its window; the border half-window
        repeats the nearest prediction.
        """
        dense = self.dense_joint(self.joint_input(images, latent))
        before = (self.receptive_field - 1) // 2
        after = self.receptive_field - 1 - before
        return F.pad(dense, (before, after, before, after), mode="replicate")


class FcbiganModel(nn.Module):
    """FCBiGAN's networks and its pixel-wise anomaly map for images of any size.

    In training mode ``forward`` returns ``(E(x), G(E(x)))``. In eval mode it returns
    ``InferenceBatch(pred_score, anomaly_map)``: per pixel the reconstruction error
    ``L_R = mean_c (x - G(E(x)))^2`` and the critic score ``L_D = (D(x, E(x)) - 1)^2`` (shift-and-stitch),
    each z-scored with statistics of normal training images (buffers, so they are saved and
    exported), fused (``max``, ``linear`` or ``mahalanobis``), smoothed by a
    ``mean_filter_size`` box filter; the image score is the map's maximum.

    Images whose sides are not multiples of the stride, or smaller than a patch, are padded on the
    bottom/right (replicated borders) and the maps cropped back, so every output has the input's
    exact H x W. Training needs images at least as large as a patch.

    Args:
        patch_size (int): Training patch side; a multiple of the stride. Defaults to ``48``.
        latent_dim (int): Channels of the latent map. Defaults to ``64``.
        widths (Sequence[int]): E/G channels per scale; ``len`` sets the stride ``2**len``.
            Defaults to ``(16, 32, 64)``.
        critic_widths (Sequence[int]): D's strided channels. Defaults to ``(8, 16, 32)``.
        latent_channels (int): Channels of z after D's up-sampling. Defaults to ``8``.
        fusion (str): ``"max"``, ``"linear"`` or ``"mahalanobis"``. Defaults to ``"max"``.
        fusion_weight (float): Weight of ``L_D`` in the ``linear`` fusion. Defaults to ``0.5``.
        mean_filter_size (int): Side of the box filter on the fused map. Defaults to ``48``.
        negative_slope (float): LeakyReLU slope. Defaults to ``0.2``.
    """

    def __init__(
        self,
        patch_size: int = 48,
        latent_dim: int = 64,
        widths: Sequence[int] = (16, 32, 64),
        critic_widths: Sequence[int] = (8, 16, 32),
        latent_channels: int = 8,
        fusion: str = "max",
        fusion_weight: float = 0.5,
        mean_filter_size: int = 48,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.stride = 2 ** len(widths)
        if patch_size % self.stride or patch_size < self.stride:
            msg = f"patch_size must be a positive multiple of {self.stride} (2 ** len(widths)), got {patch_size}"
            raise ValueError(msg)
        if fusion not in FUSIONS:
            msg = f"fusion must be one of {FUSIONS}, got {fusion!r}"
            raise ValueError(msg)
        self.patch_size = patch_size
        self.latent_dim = latent_dim
        self.fusion = fusion
        self.fusion_weight = fusion_weight
        self.mean_filter_size = mean_filter_size
        cells = patch_size // self.stride
        self.encoder = Encoder(widths, latent_dim, cells, negative_slope)
        self.generator = Generator(widths, latent_dim, cells, negative_slope)
        self.critic = Critic(critic_widths, latent_dim, latent_channels, patch_size, self.stride, negative_slope)
        # z-score statistics of (L_R, L_D) on normal data, and the precision (inverse correlation)
        # of the z-scored pair for the Mahalanobis fusion. Identity until estimated.
        self.register_buffer("score_mean", torch.zeros(2))
        self.register_buffer("score_std", torch.ones(2))
        self.register_buffer("score_precision", torch.eye(2))
        self.score_mean: torch.Tensor
        self.score_std: torch.Tensor
        self.score_precision: torch.Tensor

    def check_images(self, images: torch.Tensor) -> None:
        """Raise a clear error for input the networks cannot take (any H x W can be scored)."""
        check_rgb_batch(images, "FCBiGAN", dtype=next(self.parameters()).dtype)

    def check_training_images(self, images: torch.Tensor) -> None:
        """Training also needs images at least as large as a patch."""
        self.check_images(images)
        if min(images.shape[-2:]) < self.patch_size:
            msg = (
                f"FCBiGAN trains on {self.patch_size}-px patches and needs training images at least as large, got "
                f"{images.shape[-2]}x{images.shape[-1]}. Use larger images, a larger input_size, or a smaller "
                "patch_size."
            )
            raise ValueError(msg)

    def pad_for_networks(self, images: torch.Tensor) -> torch.Tensor:
        """Pad bottom/right to a multiple of the stride, and to at least one patch (maps are cropped back).

        Borders are replicated: reflection cannot pad by more than the image has, and images smaller
        than a patch can be scored too.
        """
        height, width = images.shape[-2:]
        target_h = max(self.patch_size, height + (-height % self.stride))
        target_w = max(self.patch_size, width + (-width % self.stride))
        if target_h != height or target_w != width:
            images = F.pad(images, (0, target_w - width, 0, target_h - height), mode="replicate")
        return images

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(E(x), G(E(x)))``, the reconstruction cropped to the input's size."""
        self.check_images(images)
        latent = self.encoder(self.pad_for_networks(images))
        return latent, self.generator(latent)[..., : images.shape[-2], : images.shape[-1]]

    def score_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw per-pixel ``(L_R, L_D)``, each (N, 1, H, W)."""
        self.check_images(images)
        height, width = images.shape[-2:]
        padded = self.pad_for_networks(images)
        latent = self.encoder(padded)
        reconstruction = self.generator(latent)
        reconstruction_error = (padded - reconstruction).pow(2).mean(dim=1, keepdim=True)
        critic_error = (self.critic.dense_score(padded, latent) - 1).pow(2)
        return reconstruction_error[..., :height, :width], critic_error[..., :height, :width]

    @torch.no_grad()
    def estimate_score_statistics(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]]) -> int:
        """Set the z-score statistics from the *normal* images of ``(images, labels)`` batches.

        Images labelled anomalous (label 1) are skipped; ``labels=None`` means all normal.
        Returns the number of images used.
        """
        statistics, used = ScoreStatistics(), 0
        for images, labels in batches:
            normal = images if labels is None else images[labels.to(images.device) == 0]
            if len(normal):
                statistics.update(torch.cat(self.score_maps(normal), dim=1))
                used += len(normal)
        device = self.score_mean.device
        self.score_mean.copy_(statistics.mean().to(device))
        self.score_std.copy_(statistics.std().clamp_min(1e-6).to(device))  # a constant score must not divide by 0
        self.score_precision.copy_(statistics.precision().to(device))
        return used

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | InferenceBatch:
        """Reconstruct (training) or score every pixel (eval) of images in [-1, 1]."""
        if self.training:
            return self.reconstruct(images)
        maps = torch.cat(self.score_maps(images), dim=1)
        fused = fuse_scores(standardize(maps, self.score_mean, self.score_std), self.fusion, self.fusion_weight,
                            self.score_precision)  # fmt: skip
        anomaly_map = mean_filter(fused, self.mean_filter_size)
        return InferenceBatch(pred_score=anomaly_map.flatten(1).amax(dim=1), anomaly_map=anomaly_map)
