"""torchvision v2 training augmentations applied to a whole batch at once, each image with its own parameters.

A v2 transform called on a batch draws *one* set of random parameters for all its images; calling it once per
image gives each its own, at the cost of one kernel launch per operation per image, which on a GPU is as
much as the model's own step for a batch of 32 (``benchmarks/training_speed.py`` counts them). The transforms
the recipes use have batched forms here, sampling their parameters as torchvision does (uniform angle,
uniform crop offset, a coin per flip): ``RandomRotation`` (nearest or bilinear, zero fill, no expand),
``RandomCrop`` (no padding), ``RandomHorizontalFlip``, ``RandomVerticalFlip``, and the deterministic
``CenterCrop``, ``Resize`` and ``StandardizeBrightness``, alone or in a ``Compose``. Any other transform is applied image by image.

Example:
    >>> import torch
    >>> from torchvision.transforms import v2
    >>> images = torch.rand(4, 3, 32, 32)
    >>> augment_batch(v2.Compose([v2.RandomCrop(20), v2.RandomRotation((-45, 45))]), images).shape
    torch.Size([4, 3, 20, 20])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import (
    CenterCrop,
    Compose,
    InterpolationMode,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomVerticalFlip,
    Resize,
    Transform,
)

from .brightness import StandardizeBrightness

BatchFunction = Callable[[torch.Tensor], torch.Tensor]
_GRID_MODES = ("nearest", "bilinear")  # torchvision's interpolation modes that grid_sample has too


def augment_batch(transform: Transform | Callable | None, images: torch.Tensor) -> torch.Tensor:
    """``transform`` applied to every image of the float (B, C, H, W) batch ``images``, each its own draw."""
    if transform is None:
        return images
    batched = batched_form(transform)
    if batched is None:
        return torch.stack([transform(image) for image in images])
    return batched(images)


def augment_cached(
    transform: Transform | Callable | None, images: torch.Tensor, image_means: Callable[[], torch.Tensor] | None = None
) -> torch.Tensor:
    """``augment_batch(transform, images / 255)`` for a ``uint8`` batch, cheaper: leading crops run on the ``uint8``
    images before they become floats, and a leading :class:`StandardizeBrightness` scales the crops by the whole
    images' means (``image_means()``, (B, 1, 1, 1), computed here from the whole images if not given), which is
    the same per-pixel scale. On 512-px images cropped to 91 px that is most of a training batch's time saved.

    Example:
        >>> import torch
        >>> from torchvision.transforms import v2
        >>> images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
        >>> augment_cached(v2.CenterCrop(8), images).equal(augment_batch(v2.CenterCrop(8), images.float() / 255))
        True
    """
    steps = _flattened(transform)
    if any(batched_form(step) is None for step in steps):
        return augment_batch(transform, images.float().div_(255))
    brightness = steps.pop(0) if steps and type(steps[0]) is StandardizeBrightness else None
    means = None
    if brightness is not None:
        means = image_means() if image_means is not None else brightness.image_means(images.float().div_(255))
    while steps and _is_crop(steps[0]):
        images = batched_form(steps.pop(0))(images)
    images = images.float().div_(255)
    if brightness is not None:
        images = brightness.scale(images, means.to(images.device))
    return augment_batch(Compose(steps), images) if steps else images


def _flattened(transform: Transform | Callable | None) -> list[Transform | Callable]:
    if transform is None:
        return []
    if type(transform) is Compose:
        return [step for inner in transform.transforms for step in _flattened(inner)]
    return [transform]


def _is_crop(transform: Transform | Callable) -> bool:
    """A crop whose batched form only selects pixels (so it runs on any dtype)."""
    kind = type(transform)
    return kind is CenterCrop or (kind is RandomCrop and transform.padding is None and not transform.pad_if_needed)


def batched_form(transform: Transform | Callable) -> BatchFunction | None:
    """A function applying ``transform`` to a whole batch with per-image parameters, or ``None`` if none here."""
    kind = type(transform)
    if kind is Compose:
        steps = [batched_form(step) for step in transform.transforms]
        return None if any(step is None for step in steps) else partial(_in_turn, steps)
    if kind in {CenterCrop, Resize, StandardizeBrightness}:  # no random parameters: the batch call is per-image exact
        return transform
    if kind in {RandomHorizontalFlip, RandomVerticalFlip}:
        return partial(_flip, p=transform.p, dim=-1 if kind is RandomHorizontalFlip else -2)
    if kind is RandomCrop and transform.padding is None and not transform.pad_if_needed:
        return partial(_random_crop, size=tuple(transform.size))
    if kind is RandomRotation and not transform.expand and transform.center is None and transform.fill in (0, None):
        mode = InterpolationMode(transform.interpolation).value  # stored as the enum or its string
        if mode in _GRID_MODES:
            return partial(_random_rotation, degrees=tuple(transform.degrees), mode=mode)
    return None


def _in_turn(steps: list[BatchFunction], images: torch.Tensor) -> torch.Tensor:
    for step in steps:
        images = step(images)
    return images


def _flip(images: torch.Tensor, *, p: float, dim: int) -> torch.Tensor:
    flipped = torch.rand(len(images), device=images.device) < p
    return torch.where(flipped.view(-1, 1, 1, 1), images.flip(dim), images)


def _random_crop(images: torch.Tensor, *, size: tuple[int, int]) -> torch.Tensor:
    batch, _, height, width = images.shape
    crop_height, crop_width = size
    if crop_height > height or crop_width > width:
        msg = f"RandomCrop of {crop_height}x{crop_width} is larger than the {height}x{width} training images"
        raise ValueError(msg)
    tops = torch.randint(0, height - crop_height + 1, (batch,), device=images.device)
    lefts = torch.randint(0, width - crop_width + 1, (batch,), device=images.device)
    rows = (tops[:, None] + torch.arange(crop_height, device=images.device))[:, :, None]
    columns = (lefts[:, None] + torch.arange(crop_width, device=images.device))[:, None, :]
    index = torch.arange(batch, device=images.device)[:, None, None]
    return images.permute(0, 2, 3, 1)[index, rows, columns].permute(0, 3, 1, 2)


def rotation_grid(angles: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``grid_sample`` grid rotating each image counter-clockwise by its angle (degrees) about its centre.

    The same inverse mapping as torchvision's ``rotate``: for an output pixel at ``p`` (pixel units from the
    centre, y down), sample the input at ``[[cos, -sin], [sin, cos]] p``.
    """
    radians = angles * (math.pi / 180)
    cos, sin = radians.cos(), radians.sin()
    # In grid_sample's normalised coordinates x is divided by width / 2 and y by height / 2.
    theta = torch.zeros(len(angles), 2, 3, device=angles.device, dtype=angles.dtype)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * height / width
    theta[:, 1, 0] = sin * width / height
    theta[:, 1, 1] = cos
    return F.affine_grid(theta, [len(angles), 1, height, width], align_corners=False)


def _random_rotation(images: torch.Tensor, *, degrees: tuple[float, float], mode: str) -> torch.Tensor:
    angles = torch.empty(len(images), device=images.device).uniform_(degrees[0], degrees[1])
    grid = rotation_grid(angles, images.shape[-2], images.shape[-1]).to(images.dtype)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)
