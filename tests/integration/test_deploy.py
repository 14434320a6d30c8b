"""Deployment: the checked OpenVINO inferencer names bad input; `anomalib-cbigan infer` writes heat maps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from anomalib.data import MVTecAD
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from PIL import Image

from anomalib_cbigan import Cbigan
from anomalib_cbigan.cli import main
from anomalib_cbigan.deploy import CheckedOpenVINOInferencer


@pytest.fixture(scope="module")
def exports(mvtec_root: Path, tmp_path_factory: pytest.TempPathFactory, whole_images: dict) -> dict[str, Path]:
    """A trained CBiGAN exported twice: dynamic input size (default) and static 64x64."""
    work = tmp_path_factory.mktemp("deploy")
    datamodule = MVTecAD(root=mvtec_root, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)
    model = Cbigan(input_size=(64, 64), critic_steps=1, visualizer=False, **whole_images)
    engine = Engine(max_epochs=1, default_root_dir=work, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=datamodule)
    return {
        "dynamic": engine.export(model, ExportType.OPENVINO, export_root=work / "dynamic"),
        "static": engine.export(model, ExportType.OPENVINO, export_root=work / "static", input_size=(64, 64)),
    }


def test_good_input_in_every_layout_gives_the_same_score(exports: dict[str, Path], mvtec_root: Path) -> None:
    inferencer = CheckedOpenVINOInferencer(exports["dynamic"])
    path = next((mvtec_root / "brick" / "test" / "hole").glob("*.png"))
    image = np.asarray(Image.open(path).convert("RGB"))
    scores = [
        float(np.asarray(inferencer.predict(x).pred_score).reshape(-1)[0])
        for x in (path, image, image.astype(np.float32) / 255, image.transpose(2, 0, 1) / 255.0)
    ]
    assert max(scores) - min(scores) < 1e-5


def test_bad_input_gets_a_clear_error(exports: dict[str, Path], tmp_path: Path) -> None:
    dynamic, static = CheckedOpenVINOInferencer(exports["dynamic"]), CheckedOpenVINOInferencer(exports["static"])
    with pytest.raises(ValueError, match="3-channel images, got 4 channels"):
        dynamic.predict(np.zeros((64, 64, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="single-channel image"):
        dynamic.predict(np.zeros((64, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="this export takes 64x64 images, got 80x96"):
        static.predict(np.zeros((80, 96, 3), dtype=np.float32))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png is not an image file"):
        dynamic.predict(text)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dynamic.predict(tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError, match="no exported model"):
        CheckedOpenVINOInferencer(tmp_path / "model.xml")


def test_infer_command_writes_a_heat_map_per_image_and_reports_unreadable_files(
    exports: dict[str, Path],
    mvtec_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    images = tmp_path / "images"
    shutil.copytree(mvtec_root / "brick" / "test" / "stain", images)
    (images / "broken.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "out"
    assert main(["infer", "--model", str(exports["dynamic"]), "--images", str(images), "--output", str(out)]) == 0
    readable = sorted(p.stem for p in images.glob("*.png") if p.name != "broken.png")
    assert sorted(p.stem.removeprefix("images_") for p in out.glob("*.png")) == readable
    assert "broken.png" in (out / "scores.md").read_text()
    assert "1 unreadable" in capsys.readouterr().out
