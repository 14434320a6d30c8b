"""Deployment: the checked OpenVINO inferencer names bad input; `anomalib-cbigan infer` writes heat maps."""

from __future__ import annotations

import shutil
from collections.abc import Callable
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
from anomalib_cbigan.edge_inference import EdgeInferencer


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


@pytest.mark.parametrize("inferencer", [CheckedOpenVINOInferencer, EdgeInferencer], ids=lambda cls: cls.__name__)
def test_bad_input_gets_a_clear_error(exports: dict[str, Path], tmp_path: Path, inferencer: type) -> None:
    dynamic, static = inferencer(exports["dynamic"]), inferencer(exports["static"])
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
        inferencer(tmp_path / "model.xml")


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


# Inference without torch: anomalib_cbigan.edge_inference (openvino, numpy and pillow only).

EDGE_DISTRIBUTIONS = ("openvino", "openvino-telemetry", "numpy", "pillow")  # openvino's requirements, and PIL


def _images_at_input_size(folder: Path, size: tuple[int, int]) -> list[np.ndarray]:
    from anomalib_cbigan.edge_inference import read_image, resize

    return [resize(read_image(path), size) for path in sorted(folder.glob("*.png"))]


@pytest.mark.parametrize("export", ["dynamic", "static"])
def test_edge_inference_gives_the_checked_inferencers_numbers(
    exports: dict[str, Path], mvtec_root: Path, export: str
) -> None:
    edge, checked = EdgeInferencer(exports[export]), CheckedOpenVINOInferencer(exports[export])
    assert edge.input_size == (64, 64)  # the static input, or the dynamic graph's resize: the model's input_size
    for image in _images_at_input_size(mvtec_root / "brick" / "test" / "hole", edge.input_size):
        mine, anomalib = edge.predict(image), checked.predict(image)
        # the same graph in the same runtime on the same pixels: normalised outputs in [0, 1] that agree to
        # rounding, whatever kernels the runtime picks
        assert mine.score == pytest.approx(float(np.asarray(anomalib.pred_score).reshape(-1)[0]), abs=1e-5)
        assert mine.label == bool(np.asarray(anomalib.pred_label).reshape(-1)[0])
        np.testing.assert_allclose(mine.anomaly_map, np.asarray(anomalib.anomaly_map).reshape(64, 64), atol=1e-5)
        np.testing.assert_array_equal(mine.mask, np.asarray(anomalib.pred_mask).reshape(64, 64).astype(bool))


def test_edge_resize_is_the_training_pre_processors(mvtec_root: Path) -> None:
    import torch
    from torchvision.transforms.v2 import functional

    from anomalib_cbigan.edge_inference import read_image, resize

    image = read_image(next((mvtec_root / "brick" / "test" / "hole").glob("*.png")))
    for size in ((64, 64), (40, 72), (300, 310)):
        trained = functional.resize(torch.from_numpy(image).permute(2, 0, 1), list(size), antialias=True)
        np.testing.assert_allclose(resize(image, size), trained.permute(1, 2, 0).numpy(), atol=1e-5)


def _edge_packages(folder: Path) -> Path:
    """Links to openvino, numpy and pillow (their files as each distribution's RECORD lists them), nothing else."""
    from importlib.metadata import distribution

    folder.mkdir()
    for name in EDGE_DISTRIBUTIONS:
        dist = distribution(name)
        for top in {Path(str(file)).parts[0] for file in dist.files or []} - {"..", "__pycache__"}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)
    return folder


def test_edge_inference_runs_in_a_venv_with_only_openvino_numpy_and_pillow(
    exports: dict[str, Path], mvtec_root: Path, tmp_path: Path, make_venv: Callable[[Path, Path], Path]
) -> None:
    import csv
    import os
    import subprocess

    from anomalib_cbigan import edge_inference

    python = make_venv(tmp_path / "edge_venv", _edge_packages(tmp_path / "edge_packages"))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for module, importable in (("torch", False), ("anomalib", False), ("lightning", False), ("openvino", True)):
        found = subprocess.run([python, "-c", f"import importlib.util as u; print(u.find_spec('{module}') is not None)"],
                               capture_output=True, text=True, env=env, check=True).stdout.strip()  # fmt: skip
        assert found == str(importable), module
    images = tmp_path / "images"
    shutil.copytree(mvtec_root / "brick" / "test" / "hole", images)
    (images / "broken.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "out"
    result = subprocess.run(  # the file itself, by path, as on a device
        [python, edge_inference.__file__, str(exports["dynamic"]), str(images), str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 unreadable" in result.stdout
    with (out / "scores.csv").open() as handle:
        rows = {Path(row["image"]).name: row for row in csv.DictReader(handle)}
    assert "is not an image file" in rows.pop("broken.png")["error"]
    checked = CheckedOpenVINOInferencer(exports["dynamic"])  # the full package's, on the same resized images
    for name, row in rows.items():
        image = edge_inference.resize(edge_inference.read_image(images / name), (64, 64))
        expected = checked.predict(image)
        assert float(row["pred_score"]) == pytest.approx(float(np.asarray(expected.pred_score).reshape(-1)[0]), abs=1e-5)
        assert int(row["pred_label"]) == int(np.asarray(expected.pred_label).reshape(-1)[0])
        assert (out / f"images_{Path(name).stem}.png").stat().st_size > 0
