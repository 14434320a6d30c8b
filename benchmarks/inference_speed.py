"""Inference speed and the accuracy each runtime costs: torch eager vs ONNX Runtime vs OpenVINO FP32/BF16/INT8.

For every registered model: a short training on the embedded textures (so the exported graph
holds real normalisation and thresholds), export through anomalib's ``Engine.export``, then,
side by side in one run, the median latency of ``--repeats`` calls after ``--warmup`` calls for
CBiGAN/EGBAD at 128 px (batch 1 and 32) and FCBiGAN on a 1024x1024 image (batch 1):

* torch eager: the Lightning model's ``forward`` (pre-processing, networks, post-processing);
* ONNX Runtime (CPU) on the ONNX export;
* OpenVINO on the OpenVINO export with ``INFERENCE_PRECISION_HINT`` f32 and bf16 (this CPU's
  half precision; it has no FP16 arithmetic), and the NNCF INT8 post-training-quantised export
  (``--compression_type INT8_PTQ``, calibrated on the training images).

Accuracy cost: image AUROC on the embedded test images for each runtime next to torch's, and
the largest |score difference| to torch. Speed-ups are ratios to torch eager in the same run.

Usage:
    python benchmarks/inference_speed.py --repeats 10

Writes ``benchmarks/results/inference_speed.{csv,md}``.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning
import numpy as np
import onnxruntime
import openvino
import torch
from anomalib.deploy import CompressionType, ExportType
from anomalib.engine import Engine

from anomalib_cbigan.data import TextureAnomalies
from anomalib_cbigan.metrics import auroc
from anomalib_cbigan.registry import list_models, model_class, takes_argument
from anomalib_cbigan.reports import write_tables
from anomalib_cbigan_bench.timing import median_seconds, write_speed_tables

RESULTS = Path(__file__).parent / "results"


def runtimes(model: torch.nn.Module, exports: dict[str, Path]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each runtime as ``images (N, 3, H, W) in [0, 1] -> pred_score (N,)``."""
    model.eval()

    def eager(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(images)).pred_score.numpy()

    session = onnxruntime.InferenceSession(str(exports["onnx"]), providers=["CPUExecutionProvider"])
    onnx_input = session.get_inputs()[0].name
    onnx_score = [o.name for o in session.get_outputs()].index("pred_score")
    core = openvino.Core()
    compiled = {
        "openvino_fp32": core.compile_model(str(exports["openvino"]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}),
        "openvino_bf16": core.compile_model(str(exports["openvino"]), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"}),
        "openvino_int8": core.compile_model(str(exports["int8"]), "CPU"),
    }

    def openvino_runner(name: str) -> Callable[[np.ndarray], np.ndarray]:
        request = compiled[name].create_infer_request()

        def run(images: np.ndarray) -> np.ndarray:
            return np.asarray(request.infer({0: images})["pred_score"])

        return run

    return {
        "torch_eager": eager,
        "onnxruntime": lambda images: session.run(None, {onnx_input: images})[onnx_score],
        **{name: openvino_runner(name) for name in compiled},
    }


def train_and_export(name: str, args: argparse.Namespace, work: Path) -> tuple[torch.nn.Module, dict, TextureAnomalies]:
    """A short training on the embedded data, then ONNX, OpenVINO and INT8 exports (dynamic input size)."""
    lightning.seed_everything(0, verbose=False)
    cls = model_class(name)
    kwargs: dict = {"visualizer": False}
    if takes_argument(cls, "patch_size"):  # FCBiGAN: full resolution, patch training
        kwargs["patches_per_epoch"] = args.patches_per_epoch
    else:
        kwargs.update(input_size=(128, 128), critic_steps=1, lr=1e-3)
        if takes_argument(cls, "tile_images"):  # CBiGAN and EGBAD: whole 128-px images, as this table was measured
            kwargs.update(tile_images=False, patches_per_epoch=0, weight_average_decay=0.0)
    model = cls(**kwargs)
    datamodule = TextureAnomalies(category="brick", train_batch_size=16)
    engine = Engine(max_epochs=args.epochs, default_root_dir=work, logger=False, enable_progress_bar=False,
                    check_val_every_n_epoch=args.epochs)  # fmt: skip
    engine.fit(model, datamodule=datamodule)
    root = work / name
    exports = {
        "onnx": engine.export(model, ExportType.ONNX, export_root=root),
        "openvino": engine.export(model, ExportType.OPENVINO, export_root=root),
        "int8": engine.export(model, ExportType.OPENVINO, export_root=root / "int8",
                              compression_type=CompressionType.INT8_PTQ, datamodule=datamodule),
    }  # fmt: skip
    return model, exports, datamodule


def test_set(datamodule: TextureAnomalies) -> tuple[list[np.ndarray], np.ndarray]:
    """Test images as read from disk ([0, 1], one array each) and their labels."""
    datamodule.setup()
    items = [datamodule.test_data[i] for i in range(len(datamodule.test_data))]
    return [item.image.unsqueeze(0).numpy() for item in items], np.array([int(item.gt_label) for item in items])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--patches-per-epoch", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=RESULTS / "inference_speed")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("anomalib").setLevel(logging.ERROR)
    rows = []
    for name in args.models:
        model, exports, datamodule = train_and_export(name, args, args.output.parent / "speed_runs")
        run = runtimes(model, exports)
        images, labels = test_set(datamodule)
        reference = np.concatenate([run["torch_eager"](image) for image in images])
        full_resolution = takes_argument(model_class(name), "patch_size")
        shapes = [(1, 1024, 1024)] if full_resolution else [(1, 128, 128), (32, 128, 128)]
        for batch, height, width in shapes:
            inputs = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
            eager_s = None
            for runtime, function in run.items():
                seconds = median_seconds(lambda f=function, x=inputs: f(x), args.warmup, args.repeats)
                eager_s = eager_s or seconds
                scores = np.concatenate([function(image) for image in images])
                rows.append({
                    "model": name, "runtime": runtime, "input": f"{batch}x{height}x{width}",
                    "latency_ms": round(1000 * seconds, 2), "images_per_s": round(batch / seconds, 1),
                    "speedup_vs_eager": round(eager_s / seconds, 2),
                    "image_AUROC": round(auroc(labels, scores), 4),
                    "max_abs_score_diff": f"{np.abs(scores - reference).max():.1e}",  # a string: tables keep 1e-6
                })  # fmt: skip
                print(rows[-1], flush=True)
                write_tables(rows, args.output)
    write_speed_tables(rows, args.output)


if __name__ == "__main__":
    main()
