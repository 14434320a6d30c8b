"""Random training patches with flips and 90-degree rotations (the FCBiGAN thesis's augmentation), for every model
that trains on patches of its images (FCBiGAN; CBiGAN's texture protocol with ``patches_per_epoch``).

Sampling is vectorised (one gather for all patches) because FCBiGAN draws thousands of
patches per epoch; flips and rotations are exact index operations, no resampling.

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.patch_sampler import sample_patches
    >>> sample_patches(torch.rand(2, 3, 64, 80), patch_size=48, per_image=5).shape
    torch.Size([10, 3, 48, 48])
"""

from __future__ import annotations

import torch


def sample_patches(
    images: torch.Tensor,
    patch_size: int,
    per_image: int,
    *,
    augment: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``per_image`` random ``patch_size`` squares from each image of (N, C, H, W), shuffled.

    With ``augment`` each patch is independently flipped horizontally and vertically
    and rotated by 90 degrees, each with probability 1/2.
    """
    count, _, height, width = images.shape
    if min(height, width) < patch_size:
        msg = f"images of {height}x{width} are smaller than the {patch_size}-px training patch"
        raise ValueError(msg)
    device = images.device
    total = count * per_image
    source = torch.arange(count, device=device).repeat_interleave(per_image)
    top = torch.randint(0, height - patch_size + 1, (total,), device=device, generator=generator)
    left = torch.randint(0, width - patch_size + 1, (total,), device=device, generator=generator)
    offsets = torch.arange(patch_size, device=device)
    rows = (top[:, None] + offsets)[:, :, None]  # (P, p, 1)
    cols = (left[:, None] + offsets)[:, None, :]  # (P, 1, p)
    patches = images.permute(0, 2, 3, 1)[source[:, None, None], rows, cols].permute(0, 3, 1, 2)
    if augment:
        flips = torch.rand(3, total, device=device, generator=generator) < 0.5
        patches = torch.where(flips[0, :, None, None, None], patches.flip(-1), patches)
        patches = torch.where(flips[1, :, None, None, None], patches.flip(-2), patches)
        patches = torch.where(flips[2, :, None, None, None], patches.rot90(1, dims=(-2, -1)), patches)
    order = torch.randperm(total, device=device, generator=generator)
    return patches[order].contiguous()
