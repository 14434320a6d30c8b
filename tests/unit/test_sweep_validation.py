"""What a sweep job measures on its validation set, the brightness shortcut model, and a model's own data section."""

from __future__ import annotations

import importlib

import pytest
import torch
from anomalib.data import ImageBatch

from anomalib_cbigan_bench.job import ValidationScores
from anomalib_cbigan_bench.overrides import apply_overrides
from anomalib_cbigan_bench.shortcut import MeanIntensity, MeanIntensityModel


def _validate(callback: ValidationScores, scores: list[float], labels: list[int], maps: torch.Tensor | None,
              masks: torch.Tensor | None) -> None:  # fmt: skip
    callback.on_validation_epoch_start(None, None)
    batch = ImageBatch(image=torch.zeros(len(scores), 3, 4, 4), gt_label=torch.tensor(labels), gt_mask=masks)
    outputs = ImageBatch(image=batch.image, pred_score=torch.tensor(scores), anomaly_map=maps, gt_mask=masks)
    callback.on_validation_batch_end(None, None, outputs, batch, 0)


def test_validation_aurocs_are_those_of_the_last_validation() -> None:
    callback = ValidationScores()
    _validate(callback, [0.9, 0.1, 0.2, 0.8], [0, 0, 1, 1], None, None)
    _validate(callback, [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], None, None)
    metrics = callback.metrics()
    assert metrics["val_image_AUROC_raw"] == 1.0
    assert metrics["val_images"] == 4  # noqa: PLR2004
    assert torch.isnan(torch.tensor(metrics["val_pixel_AUROC"]))  # no maps


def test_pixel_aurocs_follow_the_maps() -> None:
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[1, :2] = True
    maps = masks.float().unsqueeze(1) * 5 + 1  # raw scale, not [0, 1]
    callback = ValidationScores()
    _validate(callback, [0.1, 0.9], [0, 1], maps, masks)
    metrics = callback.metrics()
    assert metrics["val_pixel_AUROC"] == pytest.approx(1.0)
    assert metrics["val_pixel_AUPR"] == pytest.approx(1.0)
    _validate(callback, [0.1, 0.9], [0, 1], 6 - maps, masks)
    assert callback.metrics()["val_pixel_AUROC"] == pytest.approx(0.0, abs=0.01)


def test_pixel_curves_count_with_bincount_under_deterministic_algorithms(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seeded, deterministic fit once made the pixel curves' counting mesh grow until CI's process was killed."""
    precision_recall_curve = importlib.import_module("torchmetrics.functional.classification.precision_recall_curve")

    counted_deterministically = []
    original = precision_recall_curve._bincount

    def spy(x: torch.Tensor, minlength: int | None = None) -> torch.Tensor:
        counted_deterministically.append(torch.are_deterministic_algorithms_enabled())
        return original(x, minlength)

    monkeypatch.setattr(precision_recall_curve, "_bincount", spy)
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[1, :2] = True
    torch.use_deterministic_algorithms(True)
    try:
        callback = ValidationScores()
        _validate(callback, [0.1, 0.9], [0, 1], masks.float().unsqueeze(1), masks)
        assert torch.are_deterministic_algorithms_enabled(), "the caller's setting is restored"
    finally:
        torch.use_deterministic_algorithms(False)
    assert counted_deterministically == [False, False]  # AUROC and AUPR, each by torch.bincount
    assert callback.metrics()["val_pixel_AUROC"] == pytest.approx(1.0)


def test_one_label_only_gives_nan_not_an_error() -> None:
    callback = ValidationScores()
    _validate(callback, [0.1, 0.2], [0, 0], None, None)
    assert torch.isnan(torch.tensor(callback.metrics()["val_image_AUROC_raw"]))


def test_the_shortcut_scores_brightness_and_its_distance_from_the_training_mean() -> None:
    images = torch.stack([torch.full((3, 2, 2), value) for value in (0.2, 0.5, 0.9)])
    assert torch.allclose(MeanIntensityModel("mean").eval()(images).pred_score, torch.tensor([0.2, 0.5, 0.9]))
    model = MeanIntensityModel("distance")
    with pytest.raises(RuntimeError, match="fit it first"):
        model.eval()(images)
    model.observe(torch.full((4, 3, 2, 2), 0.5))
    assert torch.allclose(model(images).pred_score, torch.tensor([0.3, 0.0, 0.4]))
    with pytest.raises(ValueError, match="mode must be one of"):
        MeanIntensity(mode="median")


def test_a_command_line_data_option_wins_over_a_models_own_data_section() -> None:
    benchmark = {
        "seed": 0,
        "model": {"grid": [{"class_path": "Cbigan", "data": {"init_args": {"train_batch_size": 16}}},
                           {"class_path": "Egbad"}]},
        "data": {"class_path": "LocalMVTecAD", "init_args": {"train_batch_size": 32}},
    }  # fmt: skip
    out = apply_overrides(benchmark, {"data.init_args.train_batch_size": 4})
    assert out["data"]["init_args"]["train_batch_size"] == 4  # noqa: PLR2004
    assert out["model"]["grid"][0]["data"]["init_args"]["train_batch_size"] == 4  # noqa: PLR2004
    assert "data" not in out["model"]["grid"][1]
