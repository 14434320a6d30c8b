"""A validation set made from training images only: held-out normal images and defects painted on copies of them.

Hyper-parameters, training lengths and checkpoints must be chosen without test labels. anomalib's
``val_split_mode="synthetic"`` holds out part of ``train/good`` and blends Perlin noise into half of it; on MVTec
AD grid those blends lower the texture's contrast, and a CBiGAN that ranks the real test defects well ranks them
*below* the normal images (docs/benchmarks.md, grid), so they cannot choose a setting there. ``LocalMVTecAD(
val_split_mode="synthetic", synthetic_anomalies="defects")`` makes the anomalous half with the embedded dataset's
defect generator instead (:mod:`~anomalib_cbigan.data.texture_anomalies`: scratch, hole, stain, cut-and-paste of
another held-out image), painted into a window of each image scaled to its size, in grey on grey images. The window
is the share of the image that the generator's 192-px crop is of its 512-px photograph (``WINDOW_FRACTION``), so
the defects keep their size relative to the texture; on images that are such crops already (the embedded dataset),
the whole image (``window_fraction=1``).

Example:
    >>> import numpy as np
    >>> from anomalib_cbigan.data.synthetic_defects import paint_defect
    >>> image = np.full((300, 300, 3), 0.5, dtype=np.float32)
    >>> out, mask, kind = paint_defect(image, np.random.default_rng(0), image.copy())
    >>> out.shape, mask.shape, bool(mask.any()), kind in {"scratch", "hole", "stain", "cut_paste"}
    ((300, 300, 3), (300, 300), True, True)
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from anomalib.data.datasets.base import AnomalibDataset
from anomalib.data.utils import Split
from PIL import Image
from torchvision.transforms.v2 import Transform

from .texture_anomalies import _DEFECTS, CROP

# The defect window's side as a fraction of the image's shorter side: the embedded dataset's defects, drawn on
# 192-px crops of 512-px photographs, keep the same size relative to the texture.
WINDOW_FRACTION = CROP / 512
ANOMALOUS_FRACTION = 0.5  # as anomalib's synthetic split


def _resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) or (H, W) float array bilinearly resized (antialiased) to ``size``."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    tensor = tensor.permute(2, 0, 1)[None] if tensor.ndim == 3 else tensor[None, None]  # noqa: PLR2004
    out = F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return out.permute(1, 2, 0).numpy() if array.ndim == 3 else out[0].numpy()  # noqa: PLR2004


def _with_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C') as (H, W, ``channels``): grey averaged from colour, or repeated into it; an alpha channel added
    opaque or dropped."""
    have = array.shape[-1]
    if have == channels:
        return array
    if channels == 1:
        return array[..., :3].mean(axis=-1, keepdims=True)
    if have == 1:
        return np.repeat(array, channels, axis=-1)
    if have > channels:
        return array[..., :channels]
    return np.concatenate([array, np.ones((*array.shape[:2], channels - have), dtype=array.dtype)], axis=-1)


def paint_defect(
    image: np.ndarray,
    rng: np.random.Generator,
    other: np.ndarray,
    kind: str | None = None,
    window_fraction: float = WINDOW_FRACTION,
) -> tuple[np.ndarray, np.ndarray, str]:
    """``image`` with one defect, its boolean mask and the defect's kind.

    ``image`` and the cut-and-paste donor ``other`` are float arrays in [0, 1], (H, W) or (H, W, C), of any sizes
    and channel counts (the donor is brought to the image's channels). The defect is drawn at the embedded
    generator's 192-px scale on a copy of a random window (square, ``window_fraction`` of the shorter side; the
    whole shorter side of an image under 8 px), and only the change it made is scaled back into the window and
    kept where its mask is: every pixel outside the mask keeps its value.
    """
    if not 0 < window_fraction <= 1:
        msg = f"window_fraction must be in (0, 1], got {window_fraction!r}"
        raise ValueError(msg)
    flat = image.ndim == 2  # noqa: PLR2004
    image = image[..., None] if flat else image
    height, width, channels = image.shape
    side = min(height, width, max(8, round(window_fraction * min(height, width))))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    window = image[top : top + side, left : left + side]
    small = _resized(window, (CROP, CROP))
    # The donor: a window of the same size (or all of it, where smaller) brought to the same scale, so its texture
    # matches in size; stretched to 192 px where it is smaller than the window.
    donor = other[..., None] if other.ndim == 2 else other  # noqa: PLR2004
    donor_h, donor_w = min(side, donor.shape[0]), min(side, donor.shape[1])
    donor_top = int(rng.integers(0, donor.shape[0] - donor_h + 1))
    donor_left = int(rng.integers(0, donor.shape[1] - donor_w + 1))
    donor = donor[donor_top : donor_top + donor_h, donor_left : donor_left + donor_w]
    donor = _with_channels(_resized(donor, (CROP, CROP)), channels)
    kind = kind or str(rng.choice(list(_DEFECTS)))
    painted, mask = _DEFECTS[kind](small, rng, donor)
    painted_window = np.clip(window + _resized(painted - small, (side, side)), 0, 1)
    window_mask = _resized(mask.astype(np.float32), (side, side)) > 0.5  # noqa: PLR2004
    if not window_mask.any():  # a defect thinner than a pixel at this scale: where it changed the window most
        changed = np.abs(painted_window - window).max(axis=-1)
        window_mask = changed >= changed.max() * 0.5
    out = image.copy()
    out[top : top + side, left : left + side] = np.where(window_mask[..., None], painted_window, window)
    full_mask = np.zeros((height, width), dtype=bool)
    full_mask[top : top + side, left : left + side] = window_mask
    return (out[..., 0] if flat else out), full_mask, kind


def _read(path: str) -> tuple[np.ndarray, bool]:
    """An image as float RGB in [0, 1], and whether it was grey."""
    with Image.open(path) as image:
        grey = image.mode in {"L", "I;16", "I", "LA"}
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255, grey


def _perlin_blend(path: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """``path``'s image with anomalib's Perlin-noise blend (its synthetic split's settings), drawn from a seed taken
    from ``rng`` (torch's global generator left as it was); ``(image, mask, "perlin", grey)``."""
    from anomalib.data.utils.generators.perlin import PerlinAnomalyGenerator

    image, grey = _read(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31)))
        generator = PerlinAnomalyGenerator(probability=1.0, blend_factor=(0.01, 0.2))  # it draws when built, too
        out, mask = generator(torch.from_numpy(image).permute(2, 0, 1))
    return out.permute(1, 2, 0).clamp(0, 1).numpy(), mask[0].numpy() > 0.5, "perlin", grey  # noqa: PLR2004


class SyntheticDefectsDataset(AnomalibDataset):
    """Held-out normal images, half of them (at random) copied with a painted defect and its mask.

    The files are written to a temporary folder, removed with the dataset.

    Args:
        augmentations (Transform | None): The validation augmentations.
        source_samples (pd.DataFrame): The held-out normal samples (anomalib's ``samples`` frame).
        seed (int | None): Seed of the choice of images and of the defects. Defaults to ``None``.
        perlin_fraction (float): The share of the anomalous copies made with anomalib's Perlin-noise blend
            (``PerlinAnomalyGenerator``, as its synthetic split makes them) instead of a painted defect: a mixture
            of both. Defaults to ``0``: painted defects only.
        window_fraction (float): The painted defects' window, a share of each image's shorter side
            (:func:`paint_defect`). Defaults to ``WINDOW_FRACTION`` (images of whole photographs, as MVTec AD's).
    """

    def __init__(
        self,
        augmentations: Transform | None,
        source_samples: pd.DataFrame,
        seed: int | None = None,
        perlin_fraction: float = 0.0,
        window_fraction: float = WINDOW_FRACTION,
    ) -> None:
        if not 0 <= perlin_fraction <= 1:
            msg = f"perlin_fraction must be in [0, 1], got {perlin_fraction!r}"
            raise ValueError(msg)
        super().__init__(augmentations=augmentations)
        self.window_fraction = window_fraction
        rng = np.random.default_rng(seed)
        self.root = Path(tempfile.mkdtemp(prefix="anomalib_cbigan_val_defects_"))
        self._cleanup = True
        samples = source_samples.filter(["image_path", "label", "label_index", "mask_path", "split"]).reset_index(drop=True)
        anomalous = set(rng.permutation(len(samples))[: int(ANOMALOUS_FRACTION * len(samples))].tolist())
        rows = []
        for index, sample in samples.iterrows():
            row = {"image_path": sample.image_path, "label": "normal", "label_index": 0, "mask_path": "",
                   "split": Split.VAL}  # fmt: skip
            # the draw only where a mixture is asked for: painted-only sets stay what they were for a seed
            if index in anomalous and perlin_fraction > 0 and rng.random() < perlin_fraction:
                row = self._write(index, *_perlin_blend(sample.image_path, rng))
            elif index in anomalous:
                row = self._write_defect(index, sample.image_path, samples.image_path, rng)
            rows.append(row)
        self.samples = pd.DataFrame(rows)
        self.samples.attrs["task"] = "segmentation"

    def _write_defect(self, index: int, path: str, paths: pd.Series, rng: np.random.Generator) -> dict:
        image, grey = _read(path)
        donor = paths.iloc[int(rng.integers(len(paths)))]
        out, mask, kind = paint_defect(image, rng, _read(donor)[0], window_fraction=self.window_fraction)
        return self._write(index, out, mask, kind, grey)

    def _write(self, index: int, out: np.ndarray, mask: np.ndarray, kind: str, grey: bool) -> dict:
        """Save one anomalous copy and its mask under ``<root>/<kind>``; its row of ``samples``."""
        if grey:  # no colour defect on a grey material: that would be a shortcut of its own
            out = np.repeat(out.mean(axis=-1, keepdims=True), 3, axis=-1)
        folder = self.root / kind
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        image_path, mask_path = folder / f"{index:03d}.png", folder / "masks" / f"{index:03d}.png"
        Image.fromarray((out * 255).round().astype(np.uint8)).save(image_path)
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(mask_path)
        return {"image_path": str(image_path), "label": "abnormal", "label_index": 1, "mask_path": str(mask_path),
                "split": Split.VAL}  # fmt: skip

    def __del__(self) -> None:
        """Remove the written files."""
        if getattr(self, "_cleanup", False):
            shutil.rmtree(self.root, ignore_errors=True)

    def __copy__(self) -> SyntheticDefectsDataset:
        """A copy shares the files; only the original removes them."""
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        new._cleanup = False
        return new

    def __deepcopy__(self, memo: dict) -> SyntheticDefectsDataset:
        """As :meth:`__copy__`, with copied samples."""
        new = self.__copy__()
        new.samples = self.samples.copy()
        return new
