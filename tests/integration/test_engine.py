"""fit / test / predict through anomalib's Engine, for every registered model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anomalib.data import MVTecAD, PredictDataset
from anomalib.engine import Engine

from anomalib_cbigan import list_models, model_class


@pytest.fixture(scope="module")
def datamodule(mvtec_root: Path) -> MVTecAD:
    return MVTecAD(root=mvtec_root, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)


@pytest.mark.parametrize("name", list_models())
def test_fit_test_predict(name: str, datamodule: MVTecAD, tmp_path: Path, fast_model_args: dict) -> None:
    model = model_class(name)(**fast_model_args)
    engine = Engine(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=datamodule)

    metrics = engine.test(model, datamodule=datamodule, verbose=False)[0]
    for key in ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score", "image_MaxBalancedAccuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key

    # The post-processor learned normalisation and thresholds from validation...
    post = model.post_processor
    assert torch.isfinite(post.image_min) and torch.isfinite(post.image_threshold)

    # ...and applies them inside forward, so predict and the exportable forward agree.
    images = sorted((datamodule.root / "brick" / "test").rglob("*.png"))[:3]
    predictions = engine.predict(model, dataset=PredictDataset(images[0].parent), return_predictions=True)
    batch = predictions[0]
    assert batch.pred_score.min() >= 0 and batch.pred_score.max() <= 1
    assert batch.anomaly_map.shape[-2:] == (64, 64)
    assert batch.pred_label is not None and batch.pred_mask is not None
    model.eval()
    with torch.no_grad():
        forward = model(batch.image.new_tensor(PredictDataset(images[0].parent)[0].image).unsqueeze(0))
    assert torch.allclose(forward.pred_score, batch.pred_score[:1], atol=1e-5)

    # The checkpoint restores the model class, its hyper-parameters and the post-processor state.
    checkpoint = next(Path(tmp_path).rglob("*.ckpt"))
    restored = type(model).load_from_checkpoint(checkpoint)
    assert dict(restored.hparams) == dict(model.hparams)
    assert torch.equal(restored.post_processor.image_threshold, post.image_threshold)
    assert int(restored.batches_seen) == int(model.batches_seen) > 0


@pytest.mark.parametrize("name", list_models())
def test_batch_size_hyperparameter_reaches_the_dataloader(
    name: str,
    datamodule: MVTecAD,
    tmp_path: Path,
    fast_model_args: dict,
) -> None:
    model = model_class(name)(**fast_model_args, batch_size=2)
    engine = Engine(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=datamodule)
    assert engine.trainer.train_dataloader.batch_size == 2
    assert int(model.batches_seen) == 4  # 8 training images / 2
