"""The in-memory training data path: decoding, epochs of any length, augmentation per image on the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.data import ImageBatch
from anomalib.data.utils import read_image
from PIL import Image
from torchvision.transforms.v2 import Resize

from anomalib_cbigan.data import DatasetError, InMemoryDataModule, TextureAnomalies
from anomalib_cbigan.data.in_memory import CachedBatch, EpochBatches, decode_image, decode_images


def _save(path: Path, mode: str, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(len(mode) + size[0])
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)
    return path


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_images_are_decoded_to_rgb_as_anomalib_reads_them(tmp_path: Path, mode: str) -> None:
    path = _save(tmp_path / "image.png", mode, (40, 30))
    decoded = decode_image(path, None)
    assert decoded.dtype == torch.uint8 and decoded.shape == (3, 30, 40)
    torch.testing.assert_close(decoded.float() / 255, read_image(path, as_tensor=True).as_subclass(torch.Tensor), rtol=0, atol=1e-6)


def test_resizing_matches_the_pre_processors_resize(tmp_path: Path) -> None:
    path = _save(tmp_path / "image.png", "RGB", (90, 70))
    expected = Resize((32, 32), antialias=True)(read_image(path, as_tensor=True))
    assert (decode_image(path, (32, 32)).float() / 255 - expected).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding


def test_images_of_different_sizes_need_a_size(tmp_path: Path) -> None:
    paths = [_save(tmp_path / "a.png", "RGB", (40, 30)), _save(tmp_path / "b.png", "L", (50, 50))]
    assert decode_images(paths, (16, 16)).shape == (2, 3, 16, 16)
    with pytest.raises(DatasetError, match=r"come in 2 sizes: .*a\.png.*b\.png.*image_size"):
        decode_images(paths, None)


def test_an_unreadable_image_is_named(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.png", "RGB", (64, 64))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"truncated\.png.*cannot be read"):
        decode_images([good, truncated], (32, 32))


def test_one_pass_epoch_sees_every_image_once() -> None:
    batches = list(EpochBatches(10, 4))
    assert [len(b) for b in batches] == [4, 4, 2] and len(EpochBatches(10, 4)) == 3
    assert sorted(sum(batches, [])) == list(range(10))


def test_long_epochs_are_full_batches_seeing_images_equally_often() -> None:
    sampler = EpochBatches(10, 4, batches=25)  # 100 draws = 10 permutations
    batches = list(sampler)
    assert len(sampler) == len(batches) == 25 and all(len(b) == 4 for b in batches)
    assert np.bincount(sum(batches, []), minlength=10).tolist() == [10] * 10


def test_batches_become_float_image_batches_augmented_one_image_at_a_time() -> None:
    calls = []

    def augmentation(image: torch.Tensor) -> torch.Tensor:
        calls.append(image.shape)
        return image.flip(-1)

    datamodule = InMemoryDataModule(TextureAnomalies(category="brick", train_augmentations=augmentation))
    datamodule.image_paths = ["a.png", "b.png", "c.png"]
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).view(2, 3, 2, 2)
    batch = datamodule.on_after_batch_transfer(CachedBatch(images, torch.tensor([2, 0])), 0)
    assert isinstance(batch, ImageBatch) and batch.image_path == ["c.png", "a.png"]
    assert calls == [(3, 2, 2), (3, 2, 2)]
    torch.testing.assert_close(batch.image, images.float().flip(-1) / 255)
    assert not batch.gt_label.any()
    other = ImageBatch(image=torch.rand(1, 3, 2, 2))
    assert datamodule.on_after_batch_transfer(other, 0) is other  # validation and test batches pass unchanged


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"image_size": (64,)}, "image_size"), ({"batches_per_epoch": 0}, "batches_per_epoch")],
)
def test_bad_arguments_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InMemoryDataModule(TextureAnomalies(category="brick"), **kwargs)
    with pytest.raises(TypeError, match="wraps an anomalib datamodule"):
        InMemoryDataModule("MVTecAD")  # type: ignore[arg-type]
