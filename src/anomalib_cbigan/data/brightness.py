"""Each image's brightness brought to one value, so that no model can score an image by its grey level alone.

On real MVTec AD grid the mean grey level of an image alone separates good from defective test images (the
test/good photographs are darker than the training ones): a detector can read well there without seeing a
defect. :class:`StandardizeBrightness` scales every image so that its mean intensity is ``mean``; with it in the
training, validation and test transforms of a datamodule (``LocalMVTecAD(standardize_brightness=...)``), every
model sees the same images and a comparison is decided by the defects. The sweep's ``MeanIntensity`` shortcut
check (:mod:`anomalib_cbigan_bench.shortcut`) measures how much the cue is worth on a dataset.

Example:
    >>> import torch
    >>> from anomalib_cbigan.data import StandardizeBrightness
    >>> images = torch.stack([torch.full((3, 4, 4), 0.2), torch.full((3, 4, 4), 0.6)])
    >>> StandardizeBrightness(0.45)(images).mean(dim=(1, 2, 3))
    tensor([0.4500, 0.4500])
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import Compose, Transform
from torchvision.transforms.v2._utils import is_pure_tensor

_EPSILON = 1e-6


class StandardizeBrightness(Transform):
    """Scale each float image in [0, 1] so that its mean over channels and pixels is ``mean`` (then clip to [0, 1]).

    A multiplicative scale keeps black black and the image's contrast ratios; on a batch (B, C, H, W) each image
    gets its own scale. Masks pass unchanged.

    Args:
        mean (float): The mean intensity every image is brought to, in (0, 1).

    Raises:
        ValueError: if ``mean`` is not in (0, 1).
    """

    _transformed_types = (is_pure_tensor, tv_tensors.Image)

    def __init__(self, mean: float) -> None:
        if not 0 < mean < 1:
            msg = f"StandardizeBrightness takes a mean intensity in (0, 1) (images are in [0, 1]), got {mean}"
            raise ValueError(msg)
        super().__init__()
        self.mean = float(mean)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:  # noqa: ANN401
        """``inpt`` scaled to mean ``self.mean`` per image."""
        del params
        if not torch.is_floating_point(inpt):
            msg = f"StandardizeBrightness takes float images in [0, 1], got {inpt.dtype}: convert them first"
            raise TypeError(msg)
        scaled = self.scale(inpt, self.image_means(inpt))
        return tv_tensors.wrap(scaled, like=inpt) if isinstance(inpt, tv_tensors.Image) else scaled

    @staticmethod
    def image_means(images: torch.Tensor) -> torch.Tensor:
        """Each float image's mean over channels and pixels, shaped to broadcast over it (B, 1, 1, 1)."""
        return images.mean(dim=(-3, -2, -1), keepdim=True)

    def scale(self, images: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """``images`` scaled by ``self.mean / means`` and clipped to [0, 1]: the transform given the whole images'
        ``means``, so that it can follow a crop (it is a per-image scale, elementwise; batches from memory crop
        first and scale the crops, with the means of the whole images kept from when they were decoded)."""
        return (images * (self.mean / means.clamp_min(_EPSILON))).clamp(0, 1)


def with_standardized_brightness(transform: Transform | None, mean: float | None) -> Transform | None:
    """``transform`` preceded by :class:`StandardizeBrightness` (``mean``), or ``transform`` itself for ``None``.

    The brightness is set before any crop or rotation, on the whole image, so that a training crop of a dark
    region stays as dark as it is in its image.

    Example:
        >>> from torchvision.transforms.v2 import RandomCrop
        >>> [type(t).__name__ for t in with_standardized_brightness(RandomCrop(8), 0.5).transforms]
        ['StandardizeBrightness', 'RandomCrop']
    """
    if mean is None:
        return transform
    if transform is None:
        return StandardizeBrightness(mean)
    return Compose([StandardizeBrightness(mean), transform])
