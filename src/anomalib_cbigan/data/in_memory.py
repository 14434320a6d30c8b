"""Training images decoded once into memory and augmented on the model's device, in epochs of any length.

anomalib's datamodules read every training image from its file at every epoch and augment it one image at a
time in the data-loader workers. On MVTec AD's 900x900 PNGs that is slower than the models train on a few CPU
cores (``benchmarks/training_speed.py`` measures both), and the paper's protocol (1.2 million batches) becomes ~180,000 tiny epochs of 7 batches
with their start-up cost each. :class:`InMemoryDataModule` wraps any anomalib image datamodule and changes only
its training loader:

* every training image is decoded once (converted to RGB as anomalib's ``read_image`` does, so grayscale and
  RGBA images work) and resized to one size (bilinear with antialiasing, as the models' pre-processors), then
  kept as ``uint8`` (3 bytes a pixel: a few hundred images at 128x128 take megabytes);
* a batch is an index lookup; on the model's device (after Lightning moved it) it becomes floats in [0, 1] and
  the datamodule's ``train_augmentations`` are applied to the whole batch, each image with its own random
  parameters (:mod:`~anomalib_cbigan.data.batch_augmentation`; leading crops before the conversion to floats,
  and a leading brightness standardisation with each whole image's mean kept from the first batch), then the
  model's pre-processor runs as usual;
* ``batches_per_epoch`` sets the epoch length: a long protocol is ``trainer.max_steps`` batches validated (and
  checkpointed) every ``batches_per_epoch`` batches. Each epoch draws its batches from fresh random
  permutations of the images, so every image is seen equally often.

Validation, test and predict loaders, the data's name and category are the wrapped datamodule's, unchanged.
One difference from the wrapped loader: augmentations run on images already resized to ``image_size`` (a
rotation of a 128-px image instead of the 900-px original, before the resize).

Example:
    >>> from anomalib.data import MVTecAD
    >>> from anomalib_cbigan.data import InMemoryDataModule
    >>> datamodule = InMemoryDataModule(MVTecAD(category="bottle"), image_size=(128, 128), batches_per_epoch=1000)
    >>> datamodule.name, datamodule.category
    ('MVTecAD', 'bottle')
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from anomalib.data import AnomalibDataModule, ImageBatch
from anomalib.data.transforms.utils import extract_transforms_by_type
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms.v2 import Resize

from anomalib_cbigan.registry import register_datamodule

from .batch_augmentation import augment_cached
from .brightness import StandardizeBrightness
from .tree_checks import DatasetError, sizes_listed

logger = logging.getLogger(__name__)


class CachedBatch(NamedTuple):
    """A training batch as the loader yields it: ``uint8`` images and their indices in the cache."""

    images: torch.Tensor
    indices: torch.Tensor


def decode_image(path: str | Path, size: tuple[int, int] | None) -> torch.Tensor:
    """One image file as a ``uint8`` (3, H, W) tensor, RGB, resized to ``size`` (unless ``None``).

    Raises:
        DatasetError: naming the file, if it cannot be read as an image.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> path = tempfile.mktemp(suffix=".png"); Image.new("L", (30, 20), 200).save(path)
        >>> image = decode_image(path, (8, 8))
        >>> image.shape, image.dtype, int(image.max())
        (torch.Size([3, 8, 8]), torch.uint8, 200)
    """
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))  # grayscale, RGBA, palette: as anomalib's read_image
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        msg = f"Training image '{path}' cannot be read ({error}). Replace or remove the file."
        raise DatasetError(msg) from error
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)
    if size is None or tuple(tensor.shape[-2:]) == size:
        return tensor
    resized = F.interpolate(tensor[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return resized[0].round_().clamp_(0, 255).to(torch.uint8)


def decode_images(paths: Sequence[str | Path], size: tuple[int, int] | None) -> torch.Tensor:
    """All ``paths`` as one ``uint8`` (N, 3, H, W) tensor, decoded in threads (PIL releases the GIL).

    Raises:
        DatasetError: if a file cannot be read, or (``size=None``) the images differ in size.
    """
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        images = list(pool.map(lambda path: decode_image(path, size), paths))
    by_size: dict[tuple[int, int], list[str]] = {}
    for path, image in zip(paths, images, strict=True):
        by_size.setdefault((int(image.shape[-2]), int(image.shape[-1])), []).append(str(path))
    if len(by_size) > 1:
        msg = (
            f"The training images come in {sizes_listed(by_size)}: give InMemoryDataModule an image_size, or a "
            "model whose pre-processor resizes, to bring them to one size (nothing was trained)."
        )
        raise DatasetError(msg)
    return torch.stack(images)


class DecodedImages(Dataset):
    """The decoded training images; indexing a list of indices gives a whole :class:`CachedBatch` at once."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitems__(self, indices: list[int]) -> CachedBatch:
        index = torch.as_tensor(indices, dtype=torch.long)
        return CachedBatch(self.images[index], index)

    def __getitem__(self, index: int) -> CachedBatch:
        return self.__getitems__([index])


class EpochBatches(Sampler[list[int]]):
    """Index batches of one epoch, drawn from fresh random permutations of ``num_images``.

    ``batches=None`` gives one pass (the last batch may be smaller, as anomalib's shuffled loader);
    otherwise exactly ``batches`` full batches, continuing into new permutations as needed.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> batches = list(EpochBatches(5, 2, batches=4))
        >>> [len(b) for b in batches], sorted(sum(batches[:2], []) + batches[2][:1])
        ([2, 2, 2, 2], [0, 1, 2, 3, 4])
    """

    def __init__(self, num_images: int, batch_size: int, batches: int | None = None) -> None:
        self.num_images = num_images
        self.batch_size = batch_size
        self.batches = batches

    def __len__(self) -> int:
        return self.batches if self.batches is not None else math.ceil(self.num_images / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        needed = self.num_images if self.batches is None else self.batches * self.batch_size
        order = torch.cat([torch.randperm(self.num_images) for _ in range(math.ceil(needed / self.num_images))])
        for start in range(0, needed, self.batch_size):
            yield order[start : min(start + self.batch_size, needed)].tolist()


def _as_is(batch: CachedBatch) -> CachedBatch:
    return batch


@register_datamodule
class InMemoryDataModule(AnomalibDataModule):
    """Any anomalib image datamodule, training from images decoded once into memory.

    Args:
        datamodule (AnomalibDataModule): The datamodule to wrap (``MVTecAD``, ``Folder``, ...). Its
            ``train_batch_size`` and ``train_augmentations`` are used for training; everything else is its own.
        image_size (Sequence[int] | None): (height, width) the training images are decoded to. ``None``: the
            model pre-processor's resize size if it has one, else the images' own size (they must then share it).
            Defaults to ``None``.
        batches_per_epoch (int | None): Training batches per epoch; ``None`` is one pass over the images.
            Defaults to ``None``.

    Example:
        >>> from anomalib_cbigan.data import InMemoryDataModule, TextureAnomalies
        >>> InMemoryDataModule(TextureAnomalies(category="grass"), batches_per_epoch=50).batches_per_epoch
        50
    """

    # The subsets its loaders batch as read from their files (the training images are decoded to one size), for
    # the check that those can be batched (:func:`~anomalib_cbigan.data.tree_checks.check_batches_stack`).
    SUBSETS_FROM_FILES = ("val_data", "test_data")

    def __init__(
        self,
        datamodule: AnomalibDataModule,
        image_size: Sequence[int] | None = None,
        batches_per_epoch: int | None = None,
    ) -> None:
        if not isinstance(datamodule, AnomalibDataModule):
            msg = f"InMemoryDataModule wraps an anomalib datamodule (MVTecAD, Folder, ...), got {type(datamodule)}"
            raise TypeError(msg)
        if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):  # noqa: PLR2004
            msg = f"image_size must be (height, width), got {image_size}"
            raise ValueError(msg)
        if batches_per_epoch is not None and batches_per_epoch < 1:
            msg = f"batches_per_epoch must be at least 1 (or None for one pass), got {batches_per_epoch}"
            raise ValueError(msg)
        super().__init__(
            train_batch_size=datamodule.train_batch_size,
            eval_batch_size=datamodule.eval_batch_size,
            num_workers=datamodule.num_workers,
            train_augmentations=datamodule.train_augmentations,
        )
        self.datamodule = datamodule
        self.image_size = (int(image_size[0]), int(image_size[1])) if image_size is not None else None
        self.batches_per_epoch = batches_per_epoch
        self.decoded: DecodedImages | None = None
        self._image_means: torch.Tensor | None = None
        self.image_paths: list[str] = []

    @property
    def name(self) -> str:
        """The wrapped datamodule's name (results land where they would without the wrapper)."""
        return self.datamodule.name

    @property
    def category(self) -> str:
        """The wrapped datamodule's category."""
        return self.datamodule.category

    @category.setter
    def category(self, category: str) -> None:
        self.datamodule.category = category

    def prepare_data(self) -> None:
        """The wrapped datamodule's (download or tree checks)."""
        self.datamodule.prepare_data()

    def _setup(self, _stage: str | None = None) -> None:  # the wrapped datamodule splits; see setup
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Set up the wrapped datamodule, share its subsets, and decode the training images (once)."""
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            msg = (
                "InMemoryDataModule trains on one device; for several devices use the wrapped datamodule directly "
                f"({type(self.datamodule).__name__})."
            )
            raise RuntimeError(msg)
        self.datamodule.trainer = trainer
        self.datamodule.setup(stage)
        for subset in ("train_data", "val_data", "test_data"):
            if hasattr(self.datamodule, subset):
                setattr(self, subset, getattr(self.datamodule, subset))
        if self.decoded is None and hasattr(self, "train_data") and stage in {None, "fit", "train"}:
            self._decode_training_images()

    def decode_size(self) -> tuple[int, int] | None:
        """``image_size``, else the model pre-processor's resize size, else ``None`` (the images' own)."""
        if self.image_size is not None:
            return self.image_size
        model = getattr(self.trainer, "model", None) if self.trainer is not None else None
        transform = getattr(getattr(model, "pre_processor", None), "transform", None)
        resizes = extract_transforms_by_type(transform, Resize) if transform is not None else []
        if resizes and isinstance(resizes[0].size, Sequence) and len(resizes[0].size) == 2:  # noqa: PLR2004
            return int(resizes[0].size[0]), int(resizes[0].size[1])
        return None

    def _decode_training_images(self) -> None:
        self.image_paths = [str(path) for path in self.train_data.samples.image_path]
        if not self.image_paths:
            msg = f"{self.datamodule.name} has no training images to decode."
            raise DatasetError(msg)
        size = self.decode_size()
        images = decode_images(self.image_paths, size)
        self.decoded = DecodedImages(images)
        self._image_means = None
        logger.info(
            "InMemoryDataModule: %d training images decoded to %dx%d (%.1f MB)",
            len(images), images.shape[-2], images.shape[-1], images.numel() / 1e6,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        """Batches of cached images: ``batches_per_epoch`` of them (or one pass), no worker processes needed."""
        if self.decoded is None:
            self.setup("fit")
        sampler = EpochBatches(len(self.decoded), self.train_batch_size, self.batches_per_epoch)
        return DataLoader(self.decoded, batch_sampler=sampler, collate_fn=_as_is, num_workers=0)

    def image_means(self, indices: torch.Tensor) -> torch.Tensor:
        """The mean of each cached image as a float image in [0, 1] (what ``StandardizeBrightness`` scales by),
        computed once for all images the first time a batch needs them, (B, 1, 1, 1)."""
        if self._image_means is None:
            images = self.decoded.images
            self._image_means = torch.cat([StandardizeBrightness.image_means(images[start : start + 16].float() / 255)
                                           for start in range(0, len(images), 16)])  # fmt: skip
        return self._image_means[indices.cpu()]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:  # noqa: ANN401
        """On the model's device: a cached batch becomes an augmented float ``ImageBatch``; others pass as they are."""
        del dataloader_idx
        if not isinstance(batch, CachedBatch):
            return batch
        indices = batch.indices.tolist()
        images = augment_cached(self.train_augmentations, batch.images, lambda: self.image_means(batch.indices))
        return ImageBatch(
            image=images,
            gt_label=torch.zeros(len(indices), dtype=torch.bool, device=images.device),
            image_path=[self.image_paths[index] for index in indices],
        )
