"""The embedded default dataset: real texture photographs with synthetic defects.

The photographs are the 512x512 ``brick``, ``grass`` and ``gravel`` images that
scikit-image ships inside its wheel, so nothing is downloaded. Each category becomes an
MVTec AD tree (``train/good``, ``test/good``, ``test/<defect>``, ``ground_truth/<defect>``)
that anomalib's ``MVTecAD`` datamodule reads as it is.

* Normal images are 192x192 crops at random positions of the whole photo, with random
  horizontal/vertical flips (flips keep the orientation of brick rows). Train and test
  crops come from the same photo, so they may overlap in part, as MVTec AD's train and
  test images show the same material; taking them from separate regions made the normal
  test images differ from the training ones in illumination, which is not a defect.
* Defects: ``scratch`` (thin line), ``hole`` (dark ellipse), ``stain`` (soft colour or
  intensity blob) and ``cut_paste`` (a patch of another texture). Each has a binary mask.

A category is written to a temporary folder and renamed into place when complete, so an
interrupted build never leaves a tree that looks finished.

Example:
    >>> from pathlib import Path
    >>> from anomalib_cbigan.data.texture_anomalies import build_texture_dataset
    >>> root = build_texture_dataset(Path("datasets/textures"), ["brick"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata
from skimage import draw
from skimage.filters import gaussian

CATEGORIES = ("brick", "grass", "gravel")
DEFECT_TYPES = ("scratch", "hole", "stain", "cut_paste")
CROP = 192
# Bump when the generator changes so that cached trees are rebuilt.
FORMAT_VERSION = "2"
_MARKER = ".texture_anomalies_complete"


def default_root() -> Path:
    """Where the embedded dataset is cached: ``$ANOMALIB_CBIGAN_DATA`` or ``~/.cache/anomalib_cbigan/textures``."""
    env = os.environ.get("ANOMALIB_CBIGAN_DATA")
    return Path(env) if env else Path.home() / ".cache" / "anomalib_cbigan" / "textures"


def _photo(category: str) -> np.ndarray:
    """The photograph as float RGB in [0, 1] (the skimage textures are grayscale)."""
    gray = getattr(skdata, category)().astype(np.float32) / 255.0
    return np.repeat(gray[..., None], 3, axis=2)


def _crop(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    top = int(rng.integers(0, photo.shape[0] - CROP + 1))
    left = int(rng.integers(0, photo.shape[1] - CROP + 1))
    crop = photo[top : top + CROP, left : left + CROP]
    if rng.random() < 0.5:  # noqa: PLR2004
        crop = crop[:, ::-1]
    if rng.random() < 0.5:  # noqa: PLR2004
        crop = crop[::-1, :]
    return np.ascontiguousarray(crop)


def _random_colour(rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    if rng.random() < 0.5:  # noqa: PLR2004  # an intensity change...
        return np.full(channels, rng.choice([0.05, 0.95]), dtype=np.float32)
    return rng.uniform(0, 1, channels).astype(np.float32)  # ...or a colour


def _scratch(image: np.ndarray, rng: np.random.Generator, _other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros(image.shape[:2], dtype=bool)
    length = rng.uniform(50, 110)
    angle = rng.uniform(0, np.pi)
    r0, c0 = rng.uniform(40, CROP - 40, 2)
    r1 = np.clip(r0 + length * np.sin(angle), 2, CROP - 3)
    c1 = np.clip(c0 + length * np.cos(angle), 2, CROP - 3)
    rr, cc = draw.line(int(r0), int(c0), int(r1), int(c1))
    mask[rr, cc] = True
    for _ in range(int(rng.integers(1, 3))):  # thickness 3-5 px
        mask |= np.roll(mask, 1, axis=0) | np.roll(mask, 1, axis=1)
    out = image.copy()
    out[mask] = _random_colour(rng, image.shape[-1])
    return out, mask


def _hole(image: np.ndarray, rng: np.random.Generator, _other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = rng.uniform(35, CROP - 35, 2)
    radii = rng.uniform(10, 24, 2)
    rr, cc = draw.ellipse(centre[0], centre[1], radii[0], radii[1], shape=image.shape[:2], rotation=rng.uniform(0, 3))
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[rr, cc] = True
    depth = gaussian(mask.astype(np.float32), sigma=2)[..., None]
    out = image * (1 - 0.85 * depth)
    return out, mask


def _stain(image: np.ndarray, rng: np.random.Generator, _other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:CROP, 0:CROP]
    centre = rng.uniform(40, CROP - 40, 2)
    sigma = rng.uniform(10, 20)
    weight = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)
    colour = _random_colour(rng, image.shape[-1])
    out = image * (1 - 0.8 * weight[..., None]) + 0.8 * weight[..., None] * colour
    return out, weight > 0.3  # noqa: PLR2004


def _cut_paste(image: np.ndarray, rng: np.random.Generator, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A square of ``other`` (at least 52 px a side, the channels of ``image``), rotated, pasted into ``image``."""
    size = int(rng.integers(28, 52))
    src_r, src_c = rng.integers(0, np.array(other.shape[:2]) - size)
    patch = np.rot90(other[src_r : src_r + size, src_c : src_c + size], k=int(rng.integers(0, 4)))
    dst_r, dst_c = rng.integers(10, CROP - size - 10, 2)
    out = image.copy()
    out[dst_r : dst_r + size, dst_c : dst_c + size] = patch
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[dst_r : dst_r + size, dst_c : dst_c + size] = True
    return out, mask


_DEFECTS: dict[str, Callable[[np.ndarray, np.random.Generator, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "scratch": _scratch,
    "hole": _hole,
    "stain": _stain,
    "cut_paste": _cut_paste,
}


def _save_rgb(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8), mode="RGB").save(path)


def _save_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(path)


def _write_category(
    folder: Path,
    category: str,
    num_train: int,
    num_test_good: int,
    num_test_per_defect: int,
    seed: int,
) -> None:
    rng = np.random.default_rng([seed, CATEGORIES.index(category)])
    photo = _photo(category)
    other = _photo(CATEGORIES[(CATEGORIES.index(category) + 1) % len(CATEGORIES)])
    for index in range(num_train):
        _save_rgb(folder / "train" / "good" / f"{index:03d}.png", _crop(photo, rng))
    for index in range(num_test_good):
        _save_rgb(folder / "test" / "good" / f"{index:03d}.png", _crop(photo, rng))
    for defect, make_defect in _DEFECTS.items():
        for index in range(num_test_per_defect):
            image, mask = make_defect(_crop(photo, rng), rng, other)
            _save_rgb(folder / "test" / defect / f"{index:03d}.png", image)
            _save_mask(folder / "ground_truth" / defect / f"{index:03d}_mask.png", mask)


def is_current(root: Path | str, category: str) -> bool:
    """Whether ``root/category`` is a complete tree of this generator version (of any size)."""
    marker = Path(root) / category / _MARKER
    return marker.is_file() and marker.read_text().split(" ")[0] == FORMAT_VERSION


def build_texture_dataset(
    root: Path | str | None = None,
    categories: Iterable[str] = CATEGORIES,
    num_train: int = 60,
    num_test_good: int = 16,
    num_test_per_defect: int = 6,
    seed: int = 0,
) -> Path:
    """Write the MVTec-layout texture anomaly dataset under ``root`` (once) and return ``root``.

    Categories already complete with the same format version, sizes and seed are left as they
    are; others are rewritten.

    Args:
        root: Folder for the tree; defaults to :func:`default_root`.
        categories: Any of ``brick``, ``grass``, ``gravel``.
        num_train: Normal training images per category.
        num_test_good: Normal test images per category.
        num_test_per_defect: Test images per defect type and category.
        seed: Seed of the crops and defects.

    Raises:
        ValueError: for an unknown category or a non-positive count.
    """
    root = Path(root) if root is not None else default_root()
    categories = list(categories)
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        msg = f"Unknown texture categories {unknown}; the embedded dataset has {list(CATEGORIES)}"
        raise ValueError(msg)
    if min(num_train, num_test_good, num_test_per_defect) < 1:
        msg = "num_train, num_test_good and num_test_per_defect must all be at least 1"
        raise ValueError(msg)
    stamp = f"{FORMAT_VERSION} {num_train} {num_test_good} {num_test_per_defect} {seed}\n"
    root.mkdir(parents=True, exist_ok=True)
    for category in categories:
        target = root / category
        marker = target / _MARKER
        if marker.is_file() and marker.read_text() == stamp:
            continue
        staging = Path(tempfile.mkdtemp(prefix=f".{category}-", dir=root))
        try:
            _write_category(staging, category, num_train, num_test_good, num_test_per_defect, seed)
            (staging / _MARKER).write_text(stamp)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return root
