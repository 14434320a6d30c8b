"""Check an MVTec AD-layout tree before training, with errors that say what to fix.

anomalib's ``MVTecAD`` tries to download a missing tree (which fails without internet
with a network error), and a corrupt or truncated PNG surfaces as a PIL error deep inside a
data-loader worker, without the file's name. These checks run first. Grayscale and RGBA images
are accepted, as anomalib's ``read_image`` converts them to RGB; the check logs how many there are.

Example:
    >>> from anomalib_cbigan.data.tree_checks import check_mvtec_tree
    >>> check_mvtec_tree("datasets/MVTecAD", "bottle")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from anomalib.data.transforms.utils import extract_transforms_by_type
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import CenterCrop, RandomCrop, RandomResizedCrop, Resize

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".PNG")
_MAX_LISTED = 10
# A datamodule's subsets, named as a user reads them.
SUBSETS = {"train_data": "training", "val_data": "validation", "test_data": "test"}
# Transforms that give every image of a batch one size (anomalib adds the model's Resize to each subset's).
_SIZE_SETTING = (Resize, CenterCrop, RandomCrop, RandomResizedCrop)
# Longer side over shorter side beyond which an image is a mistake, not data: squashed to a square model input
# it would be unrecognisable (MVTec AD images are square; wide industrial line scans should be tiled first).
MAX_ASPECT_RATIO = 8.0
_MODE_NAMES = {"L": "grayscale", "LA": "grayscale+alpha", "RGBA": "RGB+alpha", "P": "palette", "I;16": "16-bit",
               "I": "32-bit", "F": "32-bit float"}  # fmt: skip
# Modes whose conversion to RGB (anomalib's read_image: PIL's convert("RGB")) clips every value above 255 to white:
# a 16-bit camera image would train the model on a white square, so these stay errors.
_CLIPPED_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


class DatasetError(ValueError):
    """The dataset on disk cannot be used as it is; the message says why and what to do."""


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in IMAGE_SUFFIXES and p.is_file())


def image_problem(path: Path, *, require_rgb: bool = False) -> str | None:
    """Why ``path`` cannot be used as an image (as an RGB image, if ``require_rgb``), or ``None`` if it can."""
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
    if mode in _CLIPPED_MODES:
        return (
            f"mode {mode} ({_MODE_NAMES.get(mode, mode)}); converted to RGB as anomalib reads images, every value "
            "above 255 would become white: scale it to 8 bits first, e.g. "
            "`Image.fromarray((np.asarray(Image.open(p)) >> 8).astype('uint8')).save(p)`"
        )
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


def image_mode(path: Path) -> str:
    """The PIL mode of an image file (``"RGB"``, ``"L"``, ...), read from its header only."""
    with Image.open(path) as image:
        return image.mode


def unreadable_images(paths: Iterable[Path | str]) -> dict[str, str]:
    """``{path: reason}`` for each file that cannot be read as an image; cheap (no pixel decoding).

    PIL's ``verify`` reads every chunk of the file and checks its structure (a PNG's checksums), which finds
    missing, empty, truncated and non-image files without decoding a pixel.

    Example:
        >>> import tempfile
        >>> path = tempfile.mktemp(suffix=".png"); _ = open(path, "wb").write(b"not a png")
        >>> unreadable_images([path]) == {path: f"cannot identify image file {path!r}"}
        True
    """
    problems = {}
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            problems[str(path)] = str(error)
    return problems


def listed(problems: list[str]) -> str:
    """The first problems, one per line, and how many more there are."""
    shown = "\n".join(f"  {problem}" for problem in problems[:_MAX_LISTED])
    return shown + (f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else "")


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


def check_mvtec_tree(root: Path | str, category: str, *, require_rgb: bool = False) -> None:
    """Raise :class:`DatasetError` unless ``root/category`` is a usable MVTec AD tree.

    Checks: the root and category folders exist; ``train/good`` and ``test`` hold PNG
    images; every image opens, is not truncated, is not absurdly elongated, is not 16- or 32-bit (which
    anomalib's conversion to RGB would clip to white) and (``require_rgb``) is RGB; every defect image has a
    readable ground-truth mask of its own size. Grayscale, RGBA and palette images are logged (anomalib
    converts them to RGB as it reads them); images may differ in size (the model's pre-processor resizes).

    Args:
        root: Dataset root (the folder holding category folders).
        category: Category folder name.
        require_rgb: Reject grayscale and RGBA images instead of letting anomalib convert them to RGB.
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
    converted: Counter[str] = Counter()
    for path in _images(train) + _images(test):
        problem = image_problem(path, require_rgb=require_rgb)
        if problem is None and (mode := image_mode(path)) != "RGB":
            converted[_MODE_NAMES.get(mode, mode)] += 1
        if problem is None and path.parent.parent == test and path.parent.name != "good":
            mask = folder / "ground_truth" / path.parent.name / f"{path.stem}_mask.png"
            problem = mask_problem(path, mask)
        if problem:
            problems.append(f"{path}: {problem}")
    if problems:
        msg = f"{len(problems)} unusable image(s) in '{folder}':\n{listed(problems)}"
        raise DatasetError(msg)
    if converted:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(converted.items()))
        logger.info("%s: %s image(s) are converted to RGB as anomalib reads them (alpha dropped)", folder, kinds)


def sizes_listed(by_size: dict[tuple[int, int], list[str]]) -> str:
    """``"3 sizes: 5 of 100x120 (e.g. a.png), ..."``: the commonest sizes of ``{(height, width): paths}``.

    Example:
        >>> sizes_listed({(100, 120): ["a.png", "b.png"], (90, 90): ["c.png"]})
        '2 sizes: 2 of 100x120 (e.g. a.png), 1 of 90x90 (e.g. c.png)'
    """
    common = sorted(by_size.items(), key=lambda item: -len(item[1]))
    shown = ", ".join(f"{len(paths)} of {h}x{w} (e.g. {paths[0]})" for (h, w), paths in common[:3])
    more = f" and {len(common) - 3} other sizes" if len(common) > 3 else ""  # noqa: PLR2004
    return f"{len(by_size)} sizes: {shown}{more}"


def check_batches_stack(datamodule: object, model_name: str) -> None:
    """Raise :class:`DatasetError` if a subset of ``datamodule`` (set up) batches images of different sizes.

    A batch of more than one image is stacked into one tensor, so its images need one size: a subset whose
    transforms (its augmentations, with the model's resize that anomalib adds to them) set no size and whose
    images differ in size would stop at its first batch with torch's "Sizes of tensors must match". The image
    headers are read, no pixel; the error says how to resize for the model class ``model_name``. A datamodule
    whose loaders batch some subsets otherwise names those it batches from the files in ``SUBSETS_FROM_FILES``
    (:class:`~anomalib_cbigan.data.InMemoryDataModule`: not the training images, which it decodes to one size).
    """
    problems = []
    for subset in getattr(datamodule, "SUBSETS_FROM_FILES", SUBSETS):
        role = SUBSETS[subset]
        dataset = getattr(datamodule, subset, None)
        samples = getattr(dataset, "samples", None)
        batch_size = getattr(datamodule, "train_batch_size" if subset == "train_data" else "eval_batch_size", 2)
        if samples is None or "image_path" not in samples or batch_size <= 1:
            continue
        if extract_transforms_by_type(getattr(dataset, "augmentations", None), _SIZE_SETTING):
            continue
        by_size: dict[tuple[int, int], list[str]] = {}
        for path in dict.fromkeys(samples["image_path"]):
            with Image.open(path) as image:
                by_size.setdefault((image.height, image.width), []).append(str(path))
        if len(by_size) > 1:
            problems.append(f"{role} images come in {sizes_listed(by_size)}")
    if problems:
        name = getattr(datamodule, "name", type(datamodule).__name__)
        msg = (
            f"The {name} data has images of different sizes, and nothing resizes them to one size before they are "
            f"batched (nothing was trained):\n{listed(problems)}\nGive them one size: "
            f"`{model_name}(pre_processor={model_name}.configure_pre_processor((H, W)))` resizes every image to H x W "
            "(a tiled CBiGAN or EGBAD keeps its 64-px tiles, each side at least one tile); with `anomalib train`, the "
            "same pre-processor in the model's config (the model's README: images of mixed sizes), or a Resize in "
            "the datamodule's augmentations; or batches of one image (train_batch_size / eval_batch_size 1)."
        )
        raise DatasetError(msg)
