"""Batched training augmentations: torchvision's results, each image its own random parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from anomalib_cbigan.data.batch_augmentation import augment_batch, batched_form, rotation_grid


@pytest.mark.parametrize("mode", [v2.InterpolationMode.NEAREST, v2.InterpolationMode.BILINEAR])
@pytest.mark.parametrize("angle", [30.0, -17.0, 45.0])
def test_rotation_is_torchvisions_rotate(angle: float, mode: v2.InterpolationMode) -> None:
    image = torch.rand(3, 32, 32)
    expected = TF.rotate(image, angle, interpolation=mode)
    grid = rotation_grid(torch.tensor([angle]), 32, 32)
    rotated = F.grid_sample(image[None], grid, mode=mode.value, padding_mode="zeros", align_corners=False)[0]
    torch.testing.assert_close(rotated, expected.as_subclass(torch.Tensor), rtol=0, atol=1e-5)


def test_each_image_gets_its_own_rotation() -> None:
    images = torch.ones(16, 3, 32, 32)
    rotated = augment_batch(v2.RandomRotation((-45, 45)), images)
    black_corners = (rotated[:, 0] == 0).flatten(1).sum(1)  # how much of each image rotated out
    assert len(set(black_corners.tolist())) > 8


def test_each_image_gets_its_own_crop_of_itself() -> None:
    images = torch.arange(8 * 3 * 20 * 30, dtype=torch.float32).view(8, 3, 20, 30)
    crops = augment_batch(v2.RandomCrop((5, 7)), images)
    assert crops.shape == (8, 3, 5, 7)
    offsets = set()
    for image, crop in zip(images, crops, strict=True):
        top, left = divmod(int(crop[0, 0, 0] - image[0, 0, 0]), 30)
        torch.testing.assert_close(crop, image[:, top : top + 5, left : left + 7])
        offsets.add((top, left))
    assert len(offsets) > 4


def test_flips_are_drawn_per_image() -> None:
    images = torch.rand(64, 3, 4, 4)
    flipped = augment_batch(v2.RandomHorizontalFlip(p=0.5), images)
    was_flipped = [torch.equal(f, i.flip(-1)) for f, i in zip(flipped, images, strict=True)]
    assert 10 < sum(was_flipped) < 54
    assert all(was or torch.equal(f, i) for was, f, i in zip(was_flipped, flipped, images, strict=True))


def test_the_texture_recipe_runs_batched() -> None:
    recipe = v2.Compose([v2.RandomCrop(91), v2.RandomRotation((-45, 0)), v2.CenterCrop(64)])
    assert batched_form(recipe) is not None
    assert augment_batch(recipe, torch.rand(4, 3, 128, 128)).shape == (4, 3, 64, 64)


def test_other_transforms_run_image_by_image() -> None:
    jitter = v2.Compose([v2.ColorJitter(brightness=0.5), v2.CenterCrop(8)])
    assert batched_form(jitter) is None
    assert batched_form(v2.RandomRotation(10, fill=1.0)) is None  # non-zero fill: torchvision's own path
    images = torch.rand(6, 3, 16, 16)
    out = augment_batch(jitter, images)
    assert out.shape == (6, 3, 8, 8)
    ratios = (out / images[:, :, 4:12, 4:12]).flatten(1).median(dim=1).values
    assert len(set(ratios.round(decimals=3).tolist())) > 3  # a brightness factor per image


def test_cached_batches_crop_before_the_float_conversion_and_give_the_same_images() -> None:
    """The grid recipe (brightness standardised, 91-px crop, rotation, 64-px centre) on uint8 images: the cheap order
    (crops on uint8, the whole images' brightness scale applied to the crops) gives what the plain order gives from
    the same random draws, to float32 rounding (the scale is one multiplication either way)."""
    from anomalib_cbigan.data import StandardizeBrightness
    from anomalib_cbigan.data.batch_augmentation import augment_cached

    images = torch.randint(0, 256, (8, 3, 160, 140), dtype=torch.uint8)
    recipe = v2.Compose([StandardizeBrightness(0.45),
                         v2.Compose([v2.RandomCrop(91), v2.RandomRotation((-45, 0)), v2.CenterCrop(64)])])  # fmt: skip
    torch.manual_seed(3)
    plain = augment_batch(recipe, images.float().div_(255))
    torch.manual_seed(3)
    cached = augment_cached(recipe, images)
    torch.manual_seed(3)
    means = StandardizeBrightness.image_means(images.float() / 255)
    given = augment_cached(recipe, images, lambda: means)
    assert cached.shape == plain.shape == (8, 3, 64, 64)
    torch.testing.assert_close(cached, plain, rtol=1e-6, atol=1e-6)
    assert torch.equal(given, cached)
    jitter = v2.ColorJitter(brightness=0.5)  # no batched form: the plain path, image by image
    torch.manual_seed(4)
    expected = augment_batch(jitter, images.float() / 255)
    torch.manual_seed(4)
    assert torch.equal(augment_cached(jitter, images), expected)
