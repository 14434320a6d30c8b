"""A folder of images of different sizes, as real inspection datasets often are, through every data path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from anomalib.data import Folder
from anomalib.engine import Engine
from PIL import Image

from anomalib_cbigan import Cbigan, Fcbigan
from anomalib_cbigan.data import InMemoryDataModule, LocalMVTecAD
from anomalib_cbigan.data.tree_checks import DatasetError
from anomalib_cbigan.edge_inference import EdgeInferencer, score_folder
from anomalib_cbigan.models.cbigan.torch_model import CbiganModel

ANOMALIB = str(Path(sys.executable).with_name("anomalib"))
EXAMPLE = Path(__file__).parents[2] / "configs" / "examples" / "cbigan_mixed_sizes.yaml"
CATEGORY = "mixed"
NORM_TOLERANCE = 1e-5


def _grey(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A grey grid texture (lines every 8 px), shifted at random."""
    rows, cols = np.mgrid[0:height, 0:width] + rng.integers(0, 8, 2)[:, None, None]
    return np.where((rows % 8 < 2) | (cols % 8 < 2), 70, 170).astype(np.uint8)


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MVTec-layout category of grey images of random sizes (100-300 px a side), defects with their masks."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    folder = root / CATEGORY

    def save(array: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array, mode="L").save(path)

    for index in range(16):
        save(_grey(rng, *rng.integers(100, 301, 2)), folder / "train" / "good" / f"{index:03d}.png")
    for index in range(3):
        save(_grey(rng, *rng.integers(100, 301, 2)), folder / "test" / "good" / f"{index:03d}.png")
        height, width = rng.integers(100, 301, 2)
        image, mask = _grey(rng, height, width), np.zeros((height, width), dtype=np.uint8)
        image[40:70, 50:80], mask[40:70, 50:80] = 250, 255
        save(image, folder / "test" / "spot" / f"{index:03d}.png")
        save(mask, folder / "ground_truth" / "spot" / f"{index:03d}_mask.png")
    return root


def _fit(model: object, datamodule: object, root: Path) -> Engine:
    engine = Engine(max_epochs=1, default_root_dir=root, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=datamodule)
    return engine


@pytest.mark.parametrize("model_class", [Cbigan, Fcbigan], ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("data_class", [LocalMVTecAD, Folder], ids=lambda cls: cls.__name__)
def test_images_no_one_resizes_stop_before_training_with_the_files_and_the_fix(
    mixed_root: Path, tmp_path: Path, model_class: type, data_class: type
) -> None:
    if data_class is Folder:
        datamodule = Folder(name=CATEGORY, root=mixed_root / CATEGORY, normal_dir="train/good",
                            abnormal_dir="test/spot", num_workers=0)  # fmt: skip
    else:
        datamodule = LocalMVTecAD(root=mixed_root, category=CATEGORY, num_workers=0)
    model = model_class(visualizer=False)  # Cbigan's tiles and Fcbigan's full resolution: no resize by default
    with pytest.raises(DatasetError, match=r"training images come in \d+ sizes: .*train/good/\d+\.png") as error:
        _fit(model, datamodule, tmp_path)
    assert f"{model_class.__name__}.configure_pre_processor((H, W))" in str(error.value)
    assert int(model.batches_seen) == 0 and not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize("size", [(256, 256), (640, 256)])
def test_a_tiled_cbigan_given_a_resize_trains_on_64_px_patches_and_scores_64_px_tiles(
    mixed_root: Path, tmp_path: Path, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Cbigan(pre_processor=Cbigan.configure_pre_processor(size), critic_steps=1, patches_per_epoch=32,
                   visualizer=False)  # fmt: skip
    trained, scored = set(), set()  # the sizes the networks were given
    train_on_batch, score = model.train_on_batch, model.model.score
    monkeypatch.setattr(model, "train_on_batch", lambda x: trained.add(tuple(x.shape[-2:])) or train_on_batch(x))
    monkeypatch.setattr(model.model, "score", lambda x: scored.add(tuple(x.shape[-2:])) or score(x))
    datamodule = LocalMVTecAD(root=mixed_root, category=CATEGORY, num_workers=0, train_batch_size=4)
    engine = _fit(model, datamodule, tmp_path)
    predictions = engine.predict(model, datamodule=datamodule, return_predictions=True)
    assert trained == scored == {(64, 64)}
    assert all(tuple(batch.anomaly_map.shape[-2:]) == size for batch in predictions)


def test_fcbigan_trains_and_scores_each_image_at_its_own_size_one_to_a_batch(mixed_root: Path, tmp_path: Path) -> None:
    datamodule = LocalMVTecAD(root=mixed_root, category=CATEGORY, num_workers=0, train_batch_size=1,
                              eval_batch_size=1)  # fmt: skip
    model = Fcbigan(patches_per_epoch=64, visualizer=False)
    engine = _fit(model, datamodule, tmp_path)
    predictions = engine.predict(model, datamodule=datamodule, return_predictions=True)
    assert int(model.batches_seen) > 0 and len(predictions) == 6  # noqa: PLR2004
    for batch in predictions:  # a map at each test image's own resolution
        with Image.open(batch.image_path[0]) as image:
            assert tuple(batch.anomaly_map.shape[-2:]) == (image.height, image.width)


def test_from_memory_they_are_decoded_at_the_pre_processors_size_or_refused(mixed_root: Path, tmp_path: Path) -> None:
    def in_memory() -> InMemoryDataModule:
        datamodule = LocalMVTecAD(root=mixed_root, category=CATEGORY, num_workers=0, train_batch_size=4)
        return InMemoryDataModule(datamodule, batches_per_epoch=2)

    model_args = {"critic_steps": 1, "patches_per_epoch": 16, "visualizer": False}
    with pytest.raises(DatasetError, match=r"training images come in \d+ sizes: .*train/good/\d+\.png.*image_size"):
        _fit(Cbigan(**model_args), in_memory(), tmp_path / "refused")
    resized = Cbigan(pre_processor=Cbigan.configure_pre_processor((128, 192)), **model_args)
    engine = _fit(resized, in_memory(), tmp_path / "resized")
    assert int(resized.batches_seen) > 0 and engine.trainer.state.finished


def test_cbigan_trains_and_tests_through_anomalib_train_with_the_example_config(
    mixed_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    command = [ANOMALIB, "train", "-c", str(EXAMPLE), "--data.init_args.root", str(mixed_root),
               "--data.init_args.category", CATEGORY, "--data.init_args.num_workers", "0",
               "--trainer.max_epochs", "1", "--default_root_dir", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "image_AUROC" in result.stdout + result.stderr
    checkpoint = torch.load(next(out.rglob("*.ckpt")), map_location="cpu", weights_only=False)
    # networks of 64-px inputs (the critic's joint layer takes 48 channels of 2x2 and the latent path's 512):
    # patches and tiles kept their size under the pre-processor's 512x512 resize
    assert checkpoint["state_dict"]["model.critic.joint.0.weight"].shape == (48, 48 * 2 * 2 + 512)
    assert checkpoint["global_step"] > 0

    # Deployment at the resized size: anomalib's export, then the edge inferencer on the mixed-size test images.
    model = Cbigan.load_from_checkpoint(next(out.rglob("*.ckpt")))
    engine = Engine(default_root_dir=tmp_path / "export", logger=False)
    exported = engine.export(model, "openvino", export_root=tmp_path / "export", input_size=(512, 512))
    rows = score_folder(EdgeInferencer(exported), mixed_root / CATEGORY / "test" / "spot", tmp_path / "infer")
    assert len(rows) == 3 and all(0 <= float(row["pred_score"]) <= 1 for row in rows)


@pytest.mark.numerics
def test_a_tiled_export_scores_sides_not_multiples_of_the_tile_as_torch_does(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CbiganModel(input_size=(64, 64), tile_images=True).eval()
    images = torch.rand(2, 3, 100, 150) * 2 - 1
    with torch.no_grad():
        expected = model(images)
    torch.onnx.export(model, (images,), tmp_path / "tiled.onnx", dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "tiled.onnx"))
    score, anomaly_map = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    # The same arithmetic in other kernels (ONNX Runtime's, not oneDNN's): float32 rounding, as a norm of the whole
    # output. Measured 1.8e-7 (score and map) under oneDNN's AVX-512 and AVX2 kernels on an AMD EPYC.
    for ours, reference in ((score, expected.pred_score), (anomaly_map, expected.anomaly_map)):
        assert np.linalg.norm(ours - reference.numpy()) <= NORM_TOLERANCE * np.linalg.norm(reference.numpy())
