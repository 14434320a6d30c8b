"""Check an MVTec AD-layout tree before training, with errors that say what to fix.

anomalib's ``MVTecAD`` tries to download a missing tree (which fails without internet
with a network error) and silently converts grayscale and RGBA images to RGB; a corrupt
PNG surfaces as a PIL error deep inside a data-loader worker. These checks run first.

Example:
    >>> from anomalib_cbigan.data.tree_checks import check_mvtec_tree
    >>> check_mvtec_tree("datasets/MVTecAD", "bottle")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".PNG")
_MAX_LISTED = 10
# Longer side over shorter side beyond which an image is a mistake, not data: squashed to a square model input
# it would be unrecognisable (MVTec AD images are square; wide industrial line scans should be tiled first).
MAX_ASPECT_RATIO = 8.0
_MODE_NAMES = {"L": "grayscale", "LA": "grayscale+alpha", "RGBA": "RGB+alpha", "I;16": "16-bit", "I": "32-bit"}


class DatasetError(ValueError):
    """The dataset on disk cannot be used as it is; the message says why and what to do."""


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in IMAGE_SUFFIXES and p.is_file())


def image_problem(path: Path, *, require_rgb: bool) -> str | None:
    """Why ``path`` cannot be used as an RGB image, or ``None`` if it can."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        with Image.open(path) as image:
            mode, size = image.mode, image.size
            image.verify()  # checks the file's structure and checksums without decoding
        with Image.open(path) as image:
            image.load()  # catches truncated pixel data that verify() lets through
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"corrupt or not an image ({error})"
    if require_rgb and mode != "RGB":
        return (
            f"mode {mode} ({_MODE_NAMES.get(mode, mode)}); the models take 3-channel RGB: "
            "convert it, e.g. `PIL.Image.open(p).convert('RGB').save(p)`"
        )
    width, height = size
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        return (
            f"{width}x{height} pixels, an aspect ratio beyond {MAX_ASPECT_RATIO:g}:1; resized to the model's input it "
            "would be unrecognisable: crop it into near-square pieces"
        )
    return None


def mask_problem(image: Path, mask: Path) -> str | None:
    """Why ``mask`` cannot be the ground truth of the defect image ``image``, or ``None`` if it can."""
    if not mask.is_file():
        return f"no ground-truth mask (expected '{mask}'); every defect image needs one"
    problem = image_problem(mask, require_rgb=False)
    if problem:
        return f"its mask '{mask.name}' is unusable: {problem}"
    with Image.open(image) as picture, Image.open(mask) as truth:
        if picture.size != truth.size:
            return (
                f"its mask '{mask.name}' is {truth.size[0]}x{truth.size[1]}, the image {picture.size[0]}x"
                f"{picture.size[1]}; a mask must cover its image pixel for pixel"
            )
    return None


def check_mvtec_tree(root: Path | str, category: str, *, require_rgb: bool = True) -> None:
    """Raise :class:`DatasetError` unless ``root/category`` is a usable MVTec AD tree.

    Checks: the root and category folders exist; ``train/good`` and ``test`` hold PNG
    images; every image opens, is not truncated, is not absurdly elongated and (``require_rgb``)
    is RGB; every defect image has a readable ground-truth mask of its own size.

    Args:
        root: Dataset root (the folder holding category folders).
        category: Category folder name.
        require_rgb: Reject grayscale, RGBA and 16-bit images instead of letting them be converted.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        msg = (
            f"Dataset root '{root}' does not exist. Point --data.root at the folder that holds the "
            f"'{category}' folder of your MVTec AD copy (nothing is downloaded), or use the embedded "
            "dataset: --data anomalib_cbigan.data.TextureAnomalies."
        )
        raise DatasetError(msg)
    folder = root / category
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        msg = f"Category '{category}' not found in '{root}'. Categories there: {present or 'none'}."
        raise DatasetError(msg)
    train = folder / "train" / "good"
    if not train.is_dir() or not _images(train):
        msg = f"No training images: '{train}' is missing or holds no PNG files. Put the normal images there."
        raise DatasetError(msg)
    test = folder / "test"
    if not test.is_dir() or not _images(test):
        msg = f"No test images: '{test}' is missing or holds no PNG files (test/good, test/<defect>)."
        raise DatasetError(msg)
    problems = []
    for path in _images(train) + _images(test):
        problem = image_problem(path, require_rgb=require_rgb)
        if problem is None and path.parent.parent == test and path.parent.name != "good":
            mask = folder / "ground_truth" / path.parent.name / f"{path.stem}_mask.png"
            problem = mask_problem(path, mask)
        if problem:
            problems.append(f"  {path}: {problem}")
    if problems:
        shown = "\n".join(problems[:_MAX_LISTED])
        more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        msg = f"{len(problems)} unusable image(s) in '{folder}':\n{shown}{more}"
        raise DatasetError(msg)
