"""Exported models (ONNX Runtime, OpenVINO FP32, torch) give engine.predict's scores, maps, labels and masks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from anomalib.data import MVTecAD, PredictDataset
from anomalib.deploy import ExportType, OpenVINOInferencer, TorchInferencer
from anomalib.engine import Engine
from openvino import Core

from anomalib_cbigan import Fcbigan, list_models, model_class

# Absolute bounds on anomalib's normalised outputs, which lie in [0, 1] with the threshold at 0.5: relative to the
# outputs' range, whatever the raw scores' scale. The exports run ONNX Runtime's and OpenVINO's kernels against
# torch's oneDNN ones, each summing in its own order: float32 rounding of the networks, orders of magnitude below
# these bounds on any kernel path (the raw outputs of a tiled CBiGAN agree to 2e-7 in norm:
# tests/integration/test_mixed_sizes.py), which a wrong operator in an export would exceed.
SCORE_TOLERANCE = 1e-4
MAP_TOLERANCE = 1e-3
FP32 = {"INFERENCE_PRECISION_HINT": "f32"}  # this CPU's OpenVINO default is bf16
# Half precision (bf16 on this CPU; it has no fp16 arithmetic): a looser bound, no label/mask equality.
HALF = {"INFERENCE_PRECISION_HINT": "bf16"}
HALF_TOLERANCE = 0.05
# oneDNN instruction sets without bf16 arithmetic: capped to one of them (the suite's second kernel path, AVX2),
# OpenVINO's CPU plugin still reads bf16 in the processor's flags but has no bf16 kernel to compile.
NO_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


def _bf16_kernels() -> bool:
    """Whether OpenVINO can run this CPU in bf16: the processor has it and oneDNN is not capped below it."""
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in NO_BF16_ISAS
    return not capped and "BF16" in Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.fixture(scope="module")
def datamodule(mvtec_root: Path) -> MVTecAD:
    return MVTecAD(root=mvtec_root, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)


def _images(mvtec_root: Path) -> Path:
    return mvtec_root / "brick" / "test" / "hole"


def _check_masks(mask: np.ndarray, reference: torch.Tensor, anomaly_map: torch.Tensor, threshold: float) -> None:
    """Masks agree except, at most, on pixels whose map value is within the map tolerance of the threshold."""
    differ = np.asarray(mask).astype(bool) != reference.cpu().numpy().astype(bool)
    near = (anomaly_map.cpu().numpy() - threshold).__abs__() < MAP_TOLERANCE
    assert not (differ & ~near).any()


FIELDS = ("pred_score", "anomaly_map", "pred_label", "pred_mask")


def _onnx_runner(path: Path):
    session = onnxruntime.InferenceSession(str(path))
    names = [output.name for output in session.get_outputs()]

    def run(batch: torch.Tensor) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(None, {session.get_inputs()[0].name: batch.numpy()}), strict=True))

    return run


def _inferencer_runner(inferencer: OpenVINOInferencer | TorchInferencer):
    def run(batch: torch.Tensor) -> dict[str, np.ndarray]:
        prediction = inferencer.predict(batch)
        return {field: np.asarray(torch.as_tensor(getattr(prediction, field)).detach().cpu()) for field in FIELDS}

    return run


@pytest.mark.numerics
@pytest.mark.parametrize("name", list_models())
def test_exported_models_match_engine_predict(
    name: str,
    datamodule: MVTecAD,
    mvtec_root: Path,
    tmp_path: Path,
    fast_model_args: dict,
    monkeypatch: pytest.MonkeyPatch,
    at_input_size: Callable[[object, Path], Path],
) -> None:
    model = model_class(name)(**fast_model_args)
    engine = Engine(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=datamodule)
    # Images at the input size, as deployed models are fed: the exported graph's resize cannot antialias.
    dataset = PredictDataset(at_input_size(model, _images(mvtec_root)))
    reference = engine.predict(model, dataset=dataset, return_predictions=True)[0]
    threshold = float(model.post_processor.normalized_pixel_threshold)
    image_threshold = float(model.post_processor.normalized_image_threshold)

    export_root = tmp_path / "export"
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")  # our own checkpoint: anomalib's torch inferencer asks for consent
    runners = {
        "onnxruntime": _onnx_runner(engine.export(model, ExportType.ONNX, export_root=export_root)),
        "openvino": _inferencer_runner(OpenVINOInferencer(
            engine.export(model, ExportType.OPENVINO, export_root=export_root), device="CPU", config=FP32)),
        "torch": _inferencer_runner(TorchInferencer(
            engine.export(model, ExportType.TORCH, export_root=export_root), device="cpu")),
    }  # fmt: skip
    half = None
    if _bf16_kernels():
        half = _inferencer_runner(OpenVINOInferencer(export_root / "weights" / "openvino" / "model.xml",
                                                     device="CPU", config=HALF))  # fmt: skip
    for index in range(len(reference.pred_score)):
        image = dataset[index].image  # as read from disk: the exported graph does its own scaling
        expected_map = reference.anomaly_map[index].reshape(-1).cpu()
        for runtime, run in runners.items():
            output = run(image.unsqueeze(0).cpu())
            score = float(output["pred_score"].reshape(-1)[0])
            assert abs(score - float(reference.pred_score[index])) <= SCORE_TOLERANCE, runtime
            # anomalib's threshold is one of the validation scores, so an image can sit exactly on it: there
            # the label may flip within the score tolerance (as masks do near the pixel threshold).
            if abs(float(reference.pred_score[index]) - image_threshold) > SCORE_TOLERANCE:
                assert bool(output["pred_label"].reshape(-1)[0]) == bool(reference.pred_label[index]), runtime
            assert np.abs(output["anomaly_map"].reshape(-1) - expected_map.numpy()).max() <= MAP_TOLERANCE, runtime
            _check_masks(
                output["pred_mask"].reshape(-1), reference.pred_mask[index].reshape(-1), expected_map, threshold
            )
        if half is not None:
            output = half(image.unsqueeze(0).cpu())
            score = float(output["pred_score"].reshape(-1)[0])
            assert abs(score - float(reference.pred_score[index])) <= HALF_TOLERANCE
            assert np.abs(output["anomaly_map"].reshape(-1) - expected_map.numpy()).max() <= HALF_TOLERANCE


def test_fcbigan_export_scores_images_of_any_size(mvtec_root: Path, tmp_path: Path) -> None:
    """One export, full resolution (no resize): dynamic H x W, each size scored like the torch model."""
    datamodule = MVTecAD(root=mvtec_root, category="brick", train_batch_size=4, eval_batch_size=4, num_workers=0)
    model = Fcbigan(patches_per_epoch=64, visualizer=False)
    engine = Engine(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    engine.fit(model, datamodule=datamodule)
    onnx_path = engine.export(model, ExportType.ONNX, export_root=tmp_path / "export")
    openvino = OpenVINOInferencer(engine.export(model, ExportType.OPENVINO, export_root=tmp_path / "export"),
                                  device="CPU", config=FP32)  # fmt: skip
    session = onnxruntime.InferenceSession(str(onnx_path))
    image = PredictDataset(_images(mvtec_root))[0].image
    model.eval()
    for height, width in ((192, 192), (120, 160), (67, 93)):
        batch = image[:, :height, :width].unsqueeze(0).contiguous()
        with torch.no_grad():
            expected = model(batch)
        names = [output.name for output in session.get_outputs()]
        onnx = dict(zip(names, session.run(None, {session.get_inputs()[0].name: batch.numpy()}), strict=True))
        ov = openvino.predict(batch)
        for anomaly_map, score in ((onnx["anomaly_map"], onnx["pred_score"]), (ov.anomaly_map, ov.pred_score)):
            assert np.asarray(anomaly_map).reshape(height, width).shape == (height, width)
            assert (
                np.abs(np.asarray(anomaly_map).reshape(-1) - expected.anomaly_map.reshape(-1).numpy()).max()
                <= MAP_TOLERANCE
            )
            assert abs(float(np.asarray(score).reshape(-1)[0]) - float(expected.pred_score[0])) <= SCORE_TOLERANCE
