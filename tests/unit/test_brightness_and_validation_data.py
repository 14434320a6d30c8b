"""Brightness standardisation and the validation set made from training images (held-out normals + painted defects)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from anomalib_cbigan.data import LocalMVTecAD, StandardizeBrightness
from anomalib_cbigan.data.batch_augmentation import augment_batch


def test_every_image_is_brought_to_the_mean_and_masks_pass_unchanged() -> None:
    images = torch.rand(5, 3, 16, 16) * torch.linspace(0.2, 1.0, 5).view(-1, 1, 1, 1)
    mask = tv_tensors.Mask(torch.ones(16, 16, dtype=torch.bool))
    out_image, out_mask = StandardizeBrightness(0.4)(tv_tensors.Image(images[0]), mask)
    assert torch.equal(out_mask, mask)
    assert float(out_image.mean()) == pytest.approx(0.4, abs=1e-5)
    batch = StandardizeBrightness(0.4)(images)
    assert torch.allclose(batch.mean(dim=(1, 2, 3)), torch.full((5,), 0.4), atol=1e-5)


def test_the_batched_form_equals_the_image_by_image_transform() -> None:
    images = torch.rand(4, 3, 32, 32) * torch.tensor([0.3, 0.6, 0.9, 1.0]).view(-1, 1, 1, 1)
    transform = v2.Compose([StandardizeBrightness(0.45), v2.CenterCrop(20)])
    expected = torch.stack([transform(image) for image in images])
    assert torch.allclose(augment_batch(transform, images), expected, atol=1e-6)


@pytest.mark.parametrize(("mean", "error"), [(0.0, ValueError), (1.5, ValueError)])
def test_a_mean_outside_the_image_range_is_refused(mean: float, error: type) -> None:
    with pytest.raises(error, match="mean intensity in"):
        StandardizeBrightness(mean)


def test_uint8_images_are_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match="convert them first"):
        StandardizeBrightness(0.5)(torch.zeros(3, 4, 4, dtype=torch.uint8))


def test_the_datamodule_standardises_train_val_and_test_images(mvtec_root: Path) -> None:
    data = LocalMVTecAD(root=mvtec_root, category="brick", standardize_brightness=0.3, num_workers=0,
                        train_batch_size=4, eval_batch_size=4)  # fmt: skip
    data.setup()
    for loader in (data.train_dataloader(), data.test_dataloader()):
        batch = next(iter(loader))
        assert torch.allclose(batch.image.mean(dim=(1, 2, 3)), torch.full((len(batch.image),), 0.3), atol=1e-3)


def test_the_defect_validation_set_holds_out_training_images_and_labels_half(mvtec_root: Path) -> None:
    data = LocalMVTecAD(root=mvtec_root, category="brick", val_split_mode="synthetic", val_split_ratio=0.5,
                        synthetic_anomalies="defects", seed=0, num_workers=0, eval_batch_size=8)  # fmt: skip
    data.setup()
    samples = data.val_data.samples
    train_paths = set(data.train_data.samples.image_path)
    normal = samples[samples.label_index == 0]
    assert len(train_paths) == 4 and len(samples) == 4  # noqa: PLR2004  # 8 training images, half held out
    assert not train_paths & set(normal.image_path)
    assert samples.label_index.tolist().count(1) == 2  # noqa: PLR2004
    batch = next(iter(data.val_dataloader()))
    assert batch.gt_mask is not None and bool(batch.gt_mask[batch.gt_label.bool()].any())


def test_an_unknown_kind_of_synthetic_anomaly_is_refused(mvtec_root: Path) -> None:
    with pytest.raises(ValueError, match="synthetic_anomalies must be one of"):
        LocalMVTecAD(root=mvtec_root, category="brick", synthetic_anomalies="dtd")
