"""Properties of the painted defects of the validation split, on images and donors of any sizes and channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from anomalib_cbigan.data import LocalMVTecAD
from anomalib_cbigan.data.synthetic_defects import paint_defect
from anomalib_cbigan.data.texture_anomalies import DEFECT_TYPES

SIDES = st.one_of(st.integers(1, 12), st.integers(13, 300), st.integers(301, 1500))


@st.composite
def images(draw: st.DrawFn) -> np.ndarray:
    """A float image in [0, 1] of any size: (H, W) or (H, W, C) with 1, 3 or 4 channels."""
    shape = (draw(SIDES), draw(SIDES))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    shape = shape if channels is None else (*shape, channels)
    return np.random.default_rng(draw(st.integers(0, 2**16))).uniform(0.2, 0.8, shape).astype(np.float32)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(image=images(), donor=images(), kind=st.sampled_from(DEFECT_TYPES), seed=st.integers(0, 2**16))
def test_a_defect_fits_any_image_and_changes_only_what_its_mask_marks(
    image: np.ndarray, donor: np.ndarray, kind: str, seed: int
) -> None:
    out, mask, painted = paint_defect(image, np.random.default_rng(seed), donor, kind)
    assert painted == kind
    assert out.shape == image.shape and out.dtype == image.dtype
    assert mask.shape == image.shape[:2] and mask.dtype == bool and mask.any()
    assert np.array_equal(out[~mask], image[~mask])
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("kind", DEFECT_TYPES)
def test_a_defect_is_where_its_mask_says(kind: str) -> None:
    rng = np.random.default_rng(3)
    image = rng.uniform(0.3, 0.7, (256, 256, 3)).astype(np.float32)
    out, mask, _ = paint_defect(image, rng, image[::-1].copy(), kind)
    changed = np.abs(out - image).max(axis=-1) > 0.05  # noqa: PLR2004
    assert changed[mask].mean() > 0.3  # noqa: PLR2004


def write_mixed_size_tree(root: Path, count: int = 60, seed: int = 0) -> Path:
    """``root/mixed``: ``count`` grey training images of random sizes from 100 to 600 px, a few test images."""
    rng = np.random.default_rng(seed)
    folder = root / "mixed"
    for index in range(count):
        height, width = rng.integers(100, 601, 2)
        path = folder / "train" / "good" / f"{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(60, 200, (height, width), dtype=np.uint8), mode="L").save(path)
    for name in ("test/good/000.png", "test/good/001.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(60, 200, (300, 200), dtype=np.uint8), mode="L").save(folder / name)
    return root


def test_the_defect_validation_split_sets_up_on_images_of_mixed_sizes(tmp_path: Path) -> None:
    root = write_mixed_size_tree(tmp_path)
    for seed in range(10):
        data = LocalMVTecAD(root=root, category="mixed", val_split_mode="synthetic", synthetic_anomalies="defects",
                            seed=seed)  # fmt: skip
        data.setup()
        samples = data.val_data.samples
        assert (samples.label_index == 1).sum() == len(samples) // 2, seed
        for image_path, mask_path in samples.loc[samples.label_index == 1, ["image_path", "mask_path"]].itertuples(
            index=False
        ):
            with Image.open(image_path) as image, Image.open(mask_path) as mask:
                assert image.size == mask.size
