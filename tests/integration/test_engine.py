"""fit / test / predict through anomalib's Engine, for every registered model, from files and from memory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from anomalib.data import MVTecAD, PredictDataset
from anomalib.engine import Engine
from PIL import Image

from anomalib_cbigan import Cbigan, list_models, model_class
from anomalib_cbigan.data import DatasetError, InMemoryDataModule, LocalMVTecAD


@pytest.fixture(scope="module")
def datamodule(mvtec_root: Path) -> MVTecAD:
    return MVTecAD(root=mvtec_root, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)


@pytest.mark.parametrize("name", list_models())
def test_fit_test_predict(
    name: str, datamodule: MVTecAD, tmp_path: Path, fast_model_args: dict, at_input_size: Callable[[object, Path], Path]
) -> None:
    model = model_class(name)(**fast_model_args)
    engine = Engine(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=datamodule)

    metrics = engine.test(model, datamodule=datamodule, verbose=False)[0]
    for key in ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score", "pixel_AUPR", "pixel_AUPRO",
                "image_MaxBalancedAccuracy"):  # fmt: skip
        assert 0.0 <= metrics[key] <= 1.0, key

    # The post-processor learned normalisation and thresholds from validation...
    post = model.post_processor
    assert torch.isfinite(post.image_min) and torch.isfinite(post.image_threshold)

    # ...and applies them inside forward, so predict and the exportable forward agree.
    # (on images at the input size: the exportable forward's resize cannot antialias, the pipeline's does)
    folder = at_input_size(model, datamodule.root / "brick" / "test" / "hole")
    predictions = engine.predict(model, dataset=PredictDataset(folder), return_predictions=True)
    batch = predictions[0]
    assert batch.pred_score.min() >= 0 and batch.pred_score.max() <= 1
    assert batch.anomaly_map.shape[-2:] == (64, 64)
    assert batch.pred_label is not None and batch.pred_mask is not None
    model.eval()
    with torch.no_grad():
        forward = model(batch.image.new_tensor(PredictDataset(folder)[0].image).unsqueeze(0))
    # one image alone against the same image in a batch (oneDNN may pick other kernels for another batch size):
    # normalised scores in [0, 1], float32 rounding far under 1e-5
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


@pytest.mark.parametrize("name", list_models())
def test_in_memory_training_in_epochs_of_the_asked_length(
    name: str,
    datamodule: MVTecAD,
    tmp_path: Path,
    fast_model_args: dict,
) -> None:
    data = InMemoryDataModule(datamodule, batches_per_epoch=3)  # 8 images, batches of 4: one pass would be 2
    model = model_class(name)(**fast_model_args)
    engine = Engine(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=data)
    assert int(model.batches_seen) == 6 and engine.trainer.current_epoch == 2
    assert torch.isfinite(model.post_processor.image_threshold)  # validated from the wrapped datamodule's loader
    assert data.decoded is not None and data.decoded.images.dtype == torch.uint8 and len(data.decoded) == 8
    metrics = engine.test(model, datamodule=data, verbose=False)[0]
    assert 0.0 <= metrics["image_AUROC"] <= 1.0


def test_in_memory_long_protocol_counts_batches_not_epochs(tmp_path: Path, mvtec_root: Path, whole_images: dict) -> None:
    # A step-based schedule: max_steps batches (CBiGAN makes one optimiser step a batch), validated every epoch.
    tree = tmp_path / "data"
    shutil.copytree(mvtec_root / "brick", tree / "brick")
    train = sorted((tree / "brick" / "train" / "good").glob("*.png"))
    Image.open(train[0]).convert("L").save(train[0])  # a grayscale image and one of another size: converted, resized
    Image.open(train[1]).resize((150, 170)).save(train[1])
    wrapped = MVTecAD(root=tree, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)
    data = InMemoryDataModule(wrapped, batches_per_epoch=5)
    model = Cbigan(input_size=(64, 64), critic_steps=1, visualizer=False, **whole_images)
    engine = Engine(max_steps=15, max_epochs=-1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=data)
    assert int(model.batches_seen) == engine.trainer.global_step == 15 and engine.trainer.current_epoch == 3
    assert data.decoded.images.shape == (8, 3, 64, 64)  # decoded at the pre-processor's size


@pytest.mark.parametrize("name", list_models())
def test_unreadable_image_in_any_datamodule_is_named_before_the_first_step(
    name: str, mvtec_root: Path, tmp_path: Path, fast_model_args: dict
) -> None:
    # anomalib's own MVTecAD (no tree check of ours): PIL would stop at that batch with "image file is truncated".
    tree = tmp_path / "data"
    shutil.copytree(mvtec_root / "brick", tree / "brick")
    victim = tree / "brick" / "train" / "good" / "003.png"
    victim.write_bytes(victim.read_bytes()[:-2000])
    data = MVTecAD(root=tree, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)
    model = model_class(name)(**fast_model_args)
    engine = Engine(max_epochs=1, default_root_dir=tmp_path / "run", logger=False, enable_progress_bar=False)
    with pytest.raises(DatasetError, match=r"(?s)1 file\(s\) of the MVTecAD data cannot be read.*"
                                           r"training image .*train/good/003\.png: .*[Tt]runcated"):  # fmt: skip
        engine.fit(model, datamodule=data)
    assert int(model.batches_seen) == 0 and not list((tmp_path / "run").rglob("*.ckpt"))


def test_grayscale_rgba_and_other_sizes_train_from_files(mvtec_root: Path, tmp_path: Path, whole_images: dict) -> None:
    # As most industrial cameras deliver them: converted to RGB as anomalib reads images, resized by the model.
    tree = tmp_path / "data"
    shutil.copytree(mvtec_root / "brick", tree / "brick")
    train = sorted((tree / "brick" / "train" / "good").glob("*.png"))
    Image.open(train[0]).convert("L").save(train[0])
    Image.open(train[1]).convert("RGBA").save(train[1])
    Image.open(train[2]).resize((150, 170)).save(train[2])
    data = LocalMVTecAD(root=tree, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)
    model = Cbigan(input_size=(64, 64), critic_steps=1, visualizer=False, **whole_images)
    engine = Engine(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=data)
    assert int(model.batches_seen) == 2
