"""The embedded texture dataset and the dataset checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomalib_cbigan.data import DEFECT_TYPES, DatasetError, TextureAnomalies, build_texture_dataset, check_mvtec_tree


def test_tree_has_mvtec_layout_with_masks(mvtec_root: Path) -> None:
    brick = mvtec_root / "brick"
    assert len(list((brick / "train" / "good").glob("*.png"))) == 8
    assert len(list((brick / "test" / "good").glob("*.png"))) == 4
    for defect in DEFECT_TYPES:
        images = sorted((brick / "test" / defect).glob("*.png"))
        masks = sorted((brick / "ground_truth" / defect).glob("*_mask.png"))
        assert len(images) == len(masks) == 2
        for image_path, mask_path in zip(images, masks, strict=True):
            image, mask = Image.open(image_path), np.array(Image.open(mask_path))
            assert image.mode == "RGB"
            assert mask.shape == image.size[::-1]
            assert set(np.unique(mask)) <= {0, 255}
            assert 20 < (mask > 0).sum() < 0.5 * mask.size  # a visible defect, not the whole image
    check_mvtec_tree(mvtec_root, "brick")


def test_build_is_deterministic_and_written_once(tmp_path: Path) -> None:
    kwargs = {"num_train": 2, "num_test_good": 1, "num_test_per_defect": 1}
    first = build_texture_dataset(tmp_path / "a", ["grass"], **kwargs)
    second = build_texture_dataset(tmp_path / "b", ["grass"], **kwargs)
    a, b = first / "grass/test/stain/000.png", second / "grass/test/stain/000.png"
    assert a.read_bytes() == b.read_bytes()
    mtime = a.stat().st_mtime_ns
    build_texture_dataset(tmp_path / "a", ["grass"], **kwargs)
    assert a.stat().st_mtime_ns == mtime  # cached: not rewritten
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no staging left


def test_datamodule_keeps_a_current_tree_of_other_size(mvtec_root: Path) -> None:
    before = sorted((mvtec_root / "brick" / "train" / "good").glob("*.png"))
    TextureAnomalies(root=mvtec_root, category="brick").prepare_data()
    assert sorted((mvtec_root / "brick" / "train" / "good").glob("*.png")) == before


def test_unknown_texture_category_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown texture categories"):
        build_texture_dataset(tmp_path, ["carpet"])
    with pytest.raises(ValueError, match="has categories"):
        TextureAnomalies(root=tmp_path, category="carpet")


def _copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"Dataset root '.*nowhere' does not exist.*nothing is downloaded"):
        check_mvtec_tree(tmp_path / "nowhere", "brick")


def test_missing_category_lists_the_ones_present(mvtec_root: Path) -> None:
    with pytest.raises(DatasetError, match=r"Category 'bottle' not found.*\['brick'\]"):
        check_mvtec_tree(mvtec_root, "bottle")


def test_empty_train_good(tmp_path: Path, mvtec_root: Path) -> None:
    root = _copy_tree(mvtec_root, tmp_path / "tree")
    for path in (root / "brick" / "train" / "good").glob("*.png"):
        path.unlink()
    with pytest.raises(DatasetError, match=r"No training images: '.*train/good'"):
        check_mvtec_tree(root, "brick")


def _damage(victim: Path, damage: str) -> None:
    if damage == "corrupt":
        data = bytearray(victim.read_bytes())
        data[100:200] = bytes(100)
        victim.write_bytes(bytes(data))
    elif damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:-2000])
    elif damage == "zero_bytes":
        victim.write_bytes(b"")
    elif damage == "grayscale":
        Image.open(victim).convert("L").save(victim)
    elif damage == "rgba":
        Image.open(victim).convert("RGBA").save(victim)
    elif damage == "16bit":
        Image.fromarray(np.asarray(Image.open(victim).convert("L"), dtype=np.uint16) * 257).save(victim)
        assert Image.open(victim).mode == "I;16"
    elif damage == "elongated":
        Image.open(victim).resize((1200, 64)).save(victim)
    elif damage == "other_size":
        Image.open(victim).resize((150, 170)).save(victim)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("corrupt", "corrupt or not an image"),
        ("truncated", "corrupt or not an image"),
        ("zero_bytes", "empty file"),
        ("16bit", "mode I;16 \\(16-bit\\).*above 255 would become white"),
        ("elongated", "1200x64 pixels, an aspect ratio beyond 8:1"),
    ],
)
def test_bad_image_is_named(tmp_path: Path, mvtec_root: Path, damage: str, match: str) -> None:
    root = _copy_tree(mvtec_root, tmp_path / "tree")
    _damage(root / "brick" / "train" / "good" / "003.png", damage)
    with pytest.raises(DatasetError, match=rf"(?s)1 unusable image.*003\.png: {match}"):
        check_mvtec_tree(root, "brick")


@pytest.mark.parametrize(("damage", "logged"), [("grayscale", "1 grayscale"), ("rgba", "1 RGB\\+alpha"),
                                                ("other_size", None)])  # fmt: skip
def test_convertible_images_are_logged_not_refused(
    tmp_path: Path, mvtec_root: Path, caplog: pytest.LogCaptureFixture, damage: str, logged: str | None
) -> None:
    # anomalib's read_image converts grayscale and RGBA to RGB, and the model's pre-processor resizes.
    root = _copy_tree(mvtec_root, tmp_path / "tree")
    _damage(root / "brick" / "train" / "good" / "003.png", damage)
    with caplog.at_level("INFO", logger="anomalib_cbigan.data.tree_checks"):
        check_mvtec_tree(root, "brick")
    converted = [record.getMessage() for record in caplog.records if "converted to RGB" in record.getMessage()]
    if logged is None:
        assert not converted
        return
    assert len(converted) == 1 and re.search(f"{logged} image\\(s\\) are converted to RGB", converted[0])
    with pytest.raises(DatasetError, match=r"(?s)1 unusable image.*003\.png: mode .*convert it"):
        check_mvtec_tree(root, "brick", require_rgb=True)


def test_local_mvtec_checks_instead_of_downloading(tmp_path: Path) -> None:
    from anomalib_cbigan.data import LocalMVTecAD

    with pytest.raises(DatasetError, match="does not exist"):
        LocalMVTecAD(root=tmp_path / "missing", category="bottle").prepare_data()


def test_empty_test_folder(tmp_path: Path, mvtec_root: Path) -> None:
    root = _copy_tree(mvtec_root, tmp_path / "tree")
    for path in (root / "brick" / "test").rglob("*.png"):
        path.unlink()
    with pytest.raises(DatasetError, match=r"No test images: '.*brick/test' is missing or holds no PNG files"):
        check_mvtec_tree(root, "brick")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("resized", r"its mask '000_mask.png' is 96x96, the image 192x192; a mask must cover its image"),
        ("missing", r"no ground-truth mask \(expected '.*ground_truth/hole/000_mask.png'\)"),
        ("corrupt", r"its mask '000_mask.png' is unusable: empty file"),
    ],
)
def test_bad_mask_is_named(tmp_path: Path, mvtec_root: Path, damage: str, match: str) -> None:
    root = _copy_tree(mvtec_root, tmp_path / "tree")
    mask = root / "brick" / "ground_truth" / "hole" / "000_mask.png"
    if damage == "resized":
        Image.open(mask).resize((96, 96)).save(mask)
    elif damage == "missing":
        mask.unlink()
    else:
        mask.write_bytes(b"")
    with pytest.raises(DatasetError, match=rf"(?s)1 unusable image.*test/hole/000\.png: {match}"):
        check_mvtec_tree(root, "brick")
