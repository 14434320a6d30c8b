"""Brightness standardisation and the validation set made from training images (held-out normals + painted defects)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
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


def test_every_synthetic_kind_is_made_on_the_same_held_out_images(mvtec_root: Path) -> None:
    data = LocalMVTecAD(root=mvtec_root, category="brick", val_split_mode="synthetic", val_split_ratio=0.5,
                        synthetic_anomalies="defects", seed=0, num_workers=0, eval_batch_size=8,
                        standardize_brightness=0.3)  # fmt: skip
    data.setup()
    held_out = set(data.held_out_normal.samples.image_path)
    painted_again = data.synthetic_validation("defects")
    assert painted_again.samples.label_index.tolist() == data.val_data.samples.label_index.tolist()  # same draws
    kinds = {}
    for kind in LocalMVTecAD.SYNTHETIC_ANOMALIES:
        dataset = data.synthetic_validation(kind)
        samples = dataset.samples
        assert set(samples[samples.label_index == 0].image_path) <= held_out and len(samples) == len(held_out)
        assert samples.label_index.sum() == len(held_out) // 2
        assert dataset.augmentations is data.val_data.augmentations  # the split's transforms (brightness here)
        kinds[kind] = {Path(path).parent.name for path in samples[samples.label_index == 1].image_path}
        item = dataset[int(np.flatnonzero(samples.label_index.to_numpy())[0])]
        assert bool(item.gt_mask.any())
    assert "perlin" not in kinds["defects"]


def test_a_mixture_holds_perlin_blends_and_painted_defects(tmp_path: Path) -> None:
    from anomalib_cbigan.data import build_texture_dataset
    from anomalib_cbigan.data.synthetic_defects import SyntheticDefectsDataset

    root = build_texture_dataset(tmp_path, ["brick"], num_train=24, num_test_good=1, num_test_per_defect=1)
    data = LocalMVTecAD(root=root, category="brick")
    data.setup()
    normal = data.train_data.samples
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    mixture = SyntheticDefectsDataset(None, normal, seed=0, perlin_fraction=0.5).samples
    assert torch.equal(torch.rand(1), expected)  # torch's global generator left as it was
    kinds = [Path(path).parent.name for path in mixture[mixture.label_index == 1].image_path]
    assert "perlin" in kinds and set(kinds) - {"perlin"}
    only_painted = SyntheticDefectsDataset(None, normal, seed=0).samples
    assert "perlin" not in {Path(path).parent.name for path in only_painted.image_path}
    with pytest.raises(ValueError, match="perlin_fraction must be in"):
        SyntheticDefectsDataset(None, normal, perlin_fraction=2.0)


def _median_mask_area(mask_paths: pd.Series) -> float:
    return float(np.median([np.asarray(Image.open(path)).astype(bool).mean() for path in mask_paths]))


def test_embedded_validation_defects_are_the_size_of_its_test_defects(tmp_path: Path) -> None:
    # The embedded images are the defect generator's crops: a photograph's window would shrink the validation
    # defects below the test ones (7x in area), and the validation split would rank nothing the test does.
    from anomalib_cbigan.data import TextureAnomalies, build_texture_dataset

    root = build_texture_dataset(tmp_path, ["brick"], num_train=24, num_test_good=1, num_test_per_defect=3)
    areas = {}
    for cls in (TextureAnomalies, LocalMVTecAD):
        data = cls(root=root, category="brick", val_split_mode="synthetic", val_split_ratio=0.5,
                   synthetic_anomalies="defects", seed=0)  # fmt: skip
        data.setup()
        val, test = data.val_data.samples, data.test_data.samples
        areas[cls] = _median_mask_area(val.mask_path[val.label_index == 1])
        test_area = _median_mask_area(test.mask_path[test.label_index == 1])
    assert 0.5 < areas[TextureAnomalies] / test_area < 2  # noqa: PLR2004
    assert areas[LocalMVTecAD] < 0.3 * areas[TextureAnomalies]  # noqa: PLR2004


def test_a_defect_window_outside_the_image_is_refused() -> None:
    from anomalib_cbigan.data.synthetic_defects import paint_defect

    image = np.full((32, 32), 0.5, dtype=np.float32)
    with pytest.raises(ValueError, match="window_fraction must be in"):
        paint_defect(image, np.random.default_rng(0), image, window_fraction=1.5)
