"""Edge deployment of trained detectors: every export format and precision side by side, on the real test set.

Each detector is trained here as its sweep trains it (the same grid point, built by the harness: model, data,
in-memory epochs and training budget; seed 0; the data's first grid values), except that 20% of the training
images are held out for a validation split with painted defects, then exported through anomalib's ``Engine.export``:

* ``torch`` (anomalib's ``TorchInferencer``), ``onnx`` (ONNX Runtime, CPU);
* ``openvino_fp32`` and ``openvino_fp16`` (FP16 weights), run with the f32 precision hint;
* ``openvino_int8_ptq``: NNCF post-training quantisation (anomalib's ``INT8_PTQ``), calibrated on the
  datamodule's validation split: held-out training images and synthetic anomalies made from them;
* ``openvino_int8_acq``: NNCF accuracy-controlled quantisation (``INT8_ACQ``, ``max_drop`` 0.01) validated on
  that same split with image AUROC, never on the test set (anomalib's own ``INT8_ACQ`` validates on the
  datamodule's test loader, so it gets the validation split in the test loader's place);
* ``openvino_int8_ptq_ignored``: NNCF PTQ calibrated on that split with the scoring arithmetic after the
  networks kept in FP32 (:func:`anomalib_cbigan_bench.int8_layers.scoring_operations`);
* ``openvino_int8_layers`` (the detectors in :data:`LAYER_SEARCH`): the same with the fewest operations also kept
  in FP32 that keep the detector on the validation split (:func:`anomalib_cbigan_bench.int8_layers.search`); each
  operation's sensitivity and the search's steps go to ``deployment_int8_layers`` and ``deployment_int8_search``;
* ``openvino_default``: the FP32 export under OpenVINO's default precision (bf16 where the CPU has it), as
  anomalib's stock ``OpenVINOInferencer`` runs it.

Each format is then measured in a process of its own (so the peak RSS is that inferencer's alone), on the test
images brought to the model's input size with the training pre-processor's antialiased resize (the exported
graphs' own resize cannot antialias; README, Deploying): image and pixel AUROC, max |Δ score| and |Δ map|
against torch, latency at batch 1 (median of ``--repeats`` after warm-up), images/s at batch 16, file size,
peak RSS and the seconds from a bare interpreter to a loaded model. The OpenVINO formats run through
:mod:`anomalib_cbigan.edge_inference` (openvino, numpy and pillow only); ``openvino_fp32_anomalib`` runs the
same file through the full package's ``CheckedOpenVINOInferencer`` for its import time and RSS.

Usage:
    python benchmarks/deployment.py --detectors cbigan_bottle ganomaly_bottle --repeats 30

Writes ``benchmarks/results/deployment{,_int8_layers,_int8_search}.{csv,md}`` (rows of earlier detectors are
kept). ``--reuse`` measures the exports an earlier run left in ``--work`` instead of training again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
SWEEPS = Path(__file__).parent / "sweeps"
# name -> (sweep file, model class, which of that class's entries): the trained detector as its sweep trains it.
DETECTORS = {
    "cbigan_bottle": ("bottle", "Cbigan", 0),
    "skipganomaly_bottle": ("bottle", "Skipganomaly", 0),
    "ganomaly_bottle": ("bottle", "Ganomaly", 0),
    "cbigan_grid": ("grid", "Cbigan", 0),
    "fcbigan_grid": ("grid", "Fcbigan", 0),
}
FORMATS = ("torch", "onnx", "openvino_fp32", "openvino_fp32_anomalib", "openvino_default", "openvino_fp16",
           "openvino_int8_ptq", "openvino_int8_acq",
           "openvino_int8_ptq_ignored", "openvino_int8_layers")  # fmt: skip
# The detectors whose INT8 operations are searched (anomalib_cbigan_bench.int8_layers): those whose inputs are
# 64 px, where the search (about 80 quantisations) takes minutes; on 512-px inputs (grid) it would take an hour.
LAYER_SEARCH = ("cbigan_bottle", "ganomaly_bottle", "skipganomaly_bottle")


def grid_point(detector: str) -> dict[str, Any]:
    """The sweep's grid point of ``detector``: seed 0, the data's first grid values."""
    import yaml
    from anomalib.pipelines.components.utils import get_iterator_from_grid_dict

    from anomalib_cbigan_bench.data_roots import expand_all
    from anomalib_cbigan_bench.generator import with_model_overrides

    sweep, class_path, index = DETECTORS[detector]
    config = expand_all(yaml.safe_load((SWEEPS / f"{sweep}.yaml").read_text()))
    points = [with_model_overrides(point) for point in get_iterator_from_grid_dict(config["benchmark"])]
    entries = []
    for point in points:
        model = point["model"]
        if model["class_path"] == class_path and not model.get("untrained") and model not in entries:
            entries.append(model)
    chosen = entries[index]
    point = next(point for point in points if point["model"] == chosen and point["seed"] == 0)
    # A validation split of training images (20% held out) with painted defects, for INT8 calibration and
    # accuracy control: anomalib's default split would take it from the test set.
    point["data"]["init_args"] |= {"val_split_mode": "synthetic", "val_split_ratio": 0.2,
                                   "synthetic_anomalies": "defects", "seed": 0}  # fmt: skip
    return point


class _ValidationAsTest:
    """A datamodule whose test loader is its validation loader: what anomalib's ``INT8_ACQ`` validates on."""

    def __init__(self, datamodule: Any) -> None:  # noqa: ANN401
        self._datamodule = datamodule

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        return getattr(self._datamodule, name)

    def test_dataloader(self) -> Any:  # noqa: ANN401
        return self._datamodule.val_dataloader()


def _resetting_image_auroc() -> Any:  # noqa: ANN401
    """Image AUROC that forgets its batches after each ``compute``: anomalib's ``INT8_ACQ`` validation function
    updates and computes one metric object for every model NNCF tries and never resets it."""
    from anomalib.metrics import AUROC

    class ResettingAUROC(AUROC):
        def compute(self) -> Any:  # noqa: ANN401
            value = super().compute()
            self.reset()
            return value

    return ResettingAUROC(fields=["pred_score", "gt_label"])


def train_and_export(detector: str, work: Path) -> tuple[dict[str, Path], Path, bool]:
    """Train ``detector`` as its sweep does, export every format; ``(exports, test arrays, takes any size)``."""
    from anomalib.deploy import CompressionType, ExportType
    from anomalib.engine import Engine
    from lightning import seed_everything

    from anomalib_cbigan.edge_inference import read_image, resize
    from anomalib_cbigan_bench.generator import _build, _class_parser, _trainer_args

    failures: dict[str, str] = {}
    point = grid_point(detector)
    seed_everything(point["seed"], verbose=False)
    classes = _build(_class_parser(), point)
    model, datamodule = classes.model, classes.data
    trainer = {"max_epochs": -1, **_trainer_args(point), "logger": False, "enable_progress_bar": False}
    engine = Engine(default_root_dir=work / "train", **trainer)
    started = time.perf_counter()
    engine.fit(model, datamodule=datamodule)
    print(f"{detector}: trained in {time.perf_counter() - started:.0f} s", flush=True)
    files = getattr(datamodule, "datamodule", datamodule)  # the files under an InMemoryDataModule
    # As the sweep's jobs do: the budget ends training where Lightning does not validate, and validation is what
    # sets anomalib's normalisation statistics and thresholds, which the exported graph holds.
    engine.validate(model, datamodule=files, verbose=False)
    files.setup("test")

    # The test set at the model's input size (antialiased, as the pre-processor resizes), with its masks.
    resize_to = _pre_processor_size(model)
    images, masks, labels = [], [], []
    for item in files.test_data.samples.itertuples():
        image = read_image(item.image_path)
        image = resize(image, resize_to) if resize_to else image
        mask = np.zeros(image.shape[:2], dtype=bool)
        if isinstance(item.mask_path, str) and item.mask_path:
            mask = resize(read_image(item.mask_path), image.shape[:2])[..., 0] > 0.5  # noqa: PLR2004
        images.append(image.transpose(2, 0, 1))
        masks.append(mask)
        labels.append(int(item.label_index))
    arrays = work / "test_set.npz"
    np.savez(arrays, images=np.stack(images).astype(np.float32), masks=np.stack(masks), labels=np.array(labels))

    # Tiled CBiGAN scores whole images tile by tile: its graph needs the images' size (README, Deploying).
    static = tuple(images[0].shape[-2:]) if getattr(model.model, "tiler", None) is not None else None
    exports = {"torch": engine.export(model, ExportType.TORCH, export_root=work / "torch", input_size=static),
               "onnx": engine.export(model, ExportType.ONNX, export_root=work / "onnx", input_size=static)}  # fmt: skip
    openvino = {"openvino_fp32": None, "openvino_fp16": CompressionType.FP16,
                "openvino_int8_ptq": CompressionType.INT8_PTQ, "openvino_int8_acq": CompressionType.INT8_ACQ}  # fmt: skip
    for name, compression in openvino.items():
        started = time.perf_counter()
        acq = compression == CompressionType.INT8_ACQ
        try:
            exports[name] = engine.export(
                model, ExportType.OPENVINO, export_root=work / name, input_size=static, compression_type=compression,
                datamodule=_ValidationAsTest(files) if acq else files, metric=_resetting_image_auroc() if acq else None,
                max_drop=0.01,
            )  # fmt: skip
        except RuntimeError as error:  # recorded in the table; the NNCF rows below still come
            last = [line for line in str(error).splitlines() if line.strip()][-1]
            print(f"{detector}: anomalib's {name} failed: {last[:300]}", flush=True)
            failures[name] = last[:200]
            continue
        print(f"{detector}: exported {name} in {time.perf_counter() - started:.0f} s", flush=True)
    images, labels = _validation_set(files, resize_to)
    np.savez(work / "validation_set.npz", images=images, labels=labels)
    exports["openvino_fp32_anomalib"] = exports["openvino_default"] = exports["openvino_fp32"]
    full_resolution = resize_to is None and static is None  # takes any size as it is (FCBiGAN)
    (work / "failures.json").write_text(json.dumps(failures))
    return exports, arrays, full_resolution


def _validation_set(files: Any, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN401
    """The validation split (held-out training images, painted defects) at the input size, and its labels."""
    from torchvision.transforms.v2 import functional

    images, labels = [], []
    for batch in files.val_dataloader():
        image = batch.image if size is None else functional.resize(batch.image, list(size), antialias=True)
        images.append(image.numpy().astype(np.float32))
        labels.append(batch.gt_label.numpy().astype(int))
    return np.concatenate(images), np.concatenate(labels)


def layer_search(detector: str, work: Path, exports: dict[str, Path], *, reuse: bool) -> tuple[list, list]:
    """Search which operations to keep in FP32 (:func:`anomalib_cbigan_bench.int8_layers.search`) on the validation
    split, add the chosen INT8 model to ``exports``; ``(sensitivity rows, search step rows)``."""
    from anomalib_cbigan_bench import int8_layers

    saved = work / "int8_layers.json"
    if reuse and saved.is_file() and "openvino_int8_layers" in exports:
        result = json.loads(saved.read_text())
        return result["sensitivity"], result["steps"]
    validation, test = _validation_arrays(detector, work), np.load(work / "test_set.npz")
    started = time.perf_counter()
    result = int8_layers.search(exports["openvino_fp32"], int8_layers.Split(validation["images"], validation["labels"]),
                                int8_layers.Split(test["images"], test["labels"]))  # fmt: skip
    print(f"{detector}: INT8 layer search in {time.perf_counter() - started:.0f} s", flush=True)
    if result.chosen is not None:
        model = int8_layers.quantize(exports["openvino_fp32"], validation["images"], result.chosen)
        exports["openvino_int8_layers"] = int8_layers.save(model, work / "openvino_int8_layers")
    sensitivity = [{"detector": detector, **row} for row in result.sensitivity]
    steps = [{"detector": detector, **row} for row in result.steps]
    saved.write_text(json.dumps({"sensitivity": sensitivity, "steps": steps}))
    return sensitivity, steps


def _save_exports(saved: Path, exports: dict[str, Path], full_resolution: bool) -> None:  # noqa: FBT001
    """What ``--reuse`` reads back: the exports' paths and whether the model takes any image size."""
    paths = {name: str(path) for name, path in exports.items()}
    saved.write_text(json.dumps({"exports": paths, "full_resolution": full_resolution}))


def _validation_arrays(detector: str, work: Path) -> Any:  # noqa: ANN401
    """The validation split ``train_and_export`` saved (``images``, ``labels``); for an earlier run's exports, the
    same split rebuilt from the datamodule alone (no training)."""
    arrays = work / "validation_set.npz"
    if not arrays.is_file():
        from lightning import seed_everything

        from anomalib_cbigan_bench.generator import _build, _class_parser

        point = grid_point(detector)
        seed_everything(point["seed"], verbose=False)
        classes = _build(_class_parser(), point)
        files = getattr(classes.data, "datamodule", classes.data)
        files.setup()
        images, labels = _validation_set(files, _pre_processor_size(classes.model))
        np.savez(arrays, images=images, labels=labels)
    return np.load(arrays)


def _pre_processor_size(model: Any) -> tuple[int, int] | None:  # noqa: ANN401
    """The size the model's pre-processor resizes to, or ``None``."""
    from anomalib.data.transforms.utils import extract_transforms_by_type
    from torchvision.transforms.v2 import Resize

    resizes = extract_transforms_by_type(model.pre_processor.transform, Resize)
    return tuple(resizes[0].size) if resizes else None


def _peak_rss_kb() -> int:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not inherited across ``exec`` from the
    parent that trained the model)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def _seconds(run: Any, images: np.ndarray) -> float:  # noqa: ANN401
    start = time.perf_counter()
    run(images)
    return time.perf_counter() - start


def measure(fmt: str, path: Path, arrays: Path, repeats: int, *, full_resolution: bool) -> dict[str, Any]:
    """In this (fresh) process: load ``path`` as ``fmt``, score the test set, time batch 1 and 16."""
    started = time.perf_counter()
    run = _runner(fmt, path)
    load_s = time.perf_counter() - started
    data = np.load(arrays)
    images = data["images"]
    scores, maps = [], []
    for image in images:
        score, anomaly_map = run(image[None])
        scores.append(float(np.asarray(score).reshape(-1)[0]))
        # GANomaly scores images only: no map (its pixel columns stay empty)
        maps.append(np.zeros(image.shape[-2:], np.float32) if anomaly_map is None
                    else np.asarray(anomaly_map, dtype=np.float32).reshape(image.shape[-2:]))  # fmt: skip
    one = images[:1]
    batch = np.repeat(images[:1], 16, axis=0) if len(images) < 16 else images[:16]  # noqa: PLR2004
    for _ in range(3):
        run(one)
    latencies = [_seconds(run, one) for _ in range(repeats)]
    run(batch)
    batch_times = [_seconds(run, batch) for _ in range(max(3, repeats // 10))]
    np.save(arrays.parent / f"maps_{fmt}.npy", np.stack(maps))
    latency_1024 = ""
    if full_resolution:  # a fully convolutional detector: the 1024x1024 image too
        large = np.random.default_rng(0).random((1, 3, 1024, 1024), dtype=np.float32)
        run(large)
        latency_1024 = round(1000 * float(np.median([_seconds(run, large) for _ in range(max(5, repeats // 3))])), 1)
    return {
        "latency_ms_1024": latency_1024,
        "scores": scores,
        "load_s": round(load_s, 2),
        "latency_ms": round(1000 * float(np.median(latencies)), 2),
        "images_per_s_batch16": round(len(batch) / float(np.median(batch_times)), 1),
        "peak_rss_mb": round(_peak_rss_kb() / 1024, 1),
    }


def _runner(fmt: str, path: Path) -> Any:  # noqa: ANN401
    """``images (N, 3, H, W) in [0, 1] -> (pred_score, anomaly_map)`` for one format."""
    if fmt == "torch":
        import torch
        from anomalib.deploy import TorchInferencer

        model = TorchInferencer(path, device="cpu").model

        def run_torch(images: np.ndarray) -> tuple:
            with torch.inference_mode():
                result = model(torch.from_numpy(images))
            return result.pred_score.numpy(), None if result.anomaly_map is None else result.anomaly_map.numpy()

        return run_torch
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]
        input_name = session.get_inputs()[0].name

        def run_onnx(images: np.ndarray) -> tuple:
            outputs = dict(zip(names, session.run(None, {input_name: images}), strict=True))
            return outputs["pred_score"], outputs.get("anomaly_map")

        return run_onnx
    if fmt == "openvino_fp32_anomalib":
        from anomalib_cbigan.deploy import CheckedOpenVINOInferencer

        checked = CheckedOpenVINOInferencer(path)

        def run_checked(images: np.ndarray) -> tuple:
            result = checked.predict(images)
            return result.pred_score, result.anomaly_map

        return run_checked
    # The torch-free module, by file path: what an edge device runs.
    import importlib.util

    source = Path(__file__).resolve().parents[1] / "src" / "anomalib_cbigan" / "edge_inference.py"
    spec = importlib.util.spec_from_file_location("edge_inference", source)
    edge = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = edge  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(edge)
    inferencer = edge.EdgeInferencer(path, precision=None if fmt == "openvino_default" else "f32")

    def run_openvino(images: np.ndarray) -> tuple:
        outputs = inferencer.run(images)
        return outputs["pred_score"], outputs.get("anomaly_map")

    return run_openvino


def _file_size_mb(path: Path) -> float:
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return round(sum(file.stat().st_size for file in files if file.exists()) / 2**20, 2)


def evaluate(
    detector: str, exports: dict[str, Path], arrays: Path, repeats: int, *, full_resolution: bool
) -> list[dict[str, Any]]:
    """Measure every format in its own process; compare each with torch."""
    from sklearn.metrics import roc_auc_score

    data = np.load(arrays)
    labels, masks = data["labels"], data["masks"]
    input_size = "x".join(str(side) for side in data["images"].shape[-2:])
    measured = {}
    failures = json.loads((arrays.parent / "failures.json").read_text())
    errors = [{"detector": detector, "format": fmt, "error": error} for fmt, error in failures.items()]
    rows = []
    for fmt in (fmt for fmt in FORMATS if fmt in exports):
        command = [sys.executable, __file__, "--measure", fmt, str(exports[fmt]), str(arrays), str(repeats),
                   "--full-resolution" if full_resolution else "--no-full-resolution"]  # fmt: skip
        # TRUST_REMOTE_CODE: anomalib's TorchInferencer unpickles the torch export only if told to (ours, just made).
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600,
                                env={**os.environ, "TRUST_REMOTE_CODE": "1"})  # fmt: skip
        if result.returncode != 0:
            print(f"{detector} {fmt} failed:\n{result.stderr[-3000:]}", flush=True)
            errors.append({"detector": detector, "format": fmt, "error": result.stderr.strip().splitlines()[-1][:200]})
            continue
        measured[fmt] = json.loads(result.stdout.strip().splitlines()[-1])
    reference_scores = np.array(measured["torch"]["scores"])
    reference_maps = np.load(arrays.parent / "maps_torch.npy")
    fp32_ips = measured.get("openvino_fp32", {}).get("images_per_s_batch16")
    has_maps = bool(reference_maps.any()) and bool(masks.any())
    for fmt, values in measured.items():
        scores, maps = np.array(values["scores"]), np.load(arrays.parent / f"maps_{fmt}.npy")
        rows.append({
            "detector": detector, "format": fmt,
            "image_AUROC": round(float(roc_auc_score(labels, scores)), 4),
            "pixel_AUROC": round(float(roc_auc_score(masks.reshape(-1), maps.reshape(-1))), 4) if has_maps else "",
            "max_abs_score_diff": f"{np.abs(scores - reference_scores).max():.1e}",
            "max_abs_map_diff": f"{np.abs(maps - reference_maps).max():.1e}" if has_maps else "",
            "latency_ms_batch1": values["latency_ms"],
            "latency_ms_1024x1024": values["latency_ms_1024"],
            "images_per_s_batch16": values["images_per_s_batch16"],
            "vs_openvino_fp32": round(values["images_per_s_batch16"] / fp32_ips, 2) if fp32_ips else "",
            "file_mb": _file_size_mb(exports[fmt]),
            "peak_rss_mb": values["peak_rss_mb"],
            "load_s": values["load_s"],
            "input": input_size,
            "error": "",
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows + errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # cbigan_grid is left out unless named: anomalib's ONNX export of its tiled 512-px graph did not finish in 10
    # minutes (docs/deployment.md).
    parser.add_argument("--detectors", nargs="+", default=[name for name in DETECTORS if name != "cbigan_grid"],
                        choices=list(DETECTORS))  # fmt: skip
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path("results/deployment"))
    parser.add_argument("--output", type=Path, default=RESULTS / "deployment")
    parser.add_argument("--reuse", action="store_true", help="measure the exports an earlier run left in --work")
    parser.add_argument("--measure", nargs=4, metavar=("FORMAT", "PATH", "ARRAYS", "REPEATS"), help=argparse.SUPPRESS)
    parser.add_argument("--full-resolution", action=argparse.BooleanOptionalAction, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("anomalib").setLevel(logging.ERROR)
    if args.measure:
        fmt, path, arrays, repeats = args.measure
        print(json.dumps(measure(fmt, Path(path), Path(arrays), int(repeats), full_resolution=args.full_resolution)))
        return
    import pandas as pd

    from anomalib_cbigan.reports import write_tables
    from anomalib_cbigan_bench import int8_layers

    def earlier(stem: Path) -> list[dict[str, Any]]:  # the rows of detectors not run now, as written
        csv_path = stem.with_suffix(".csv")
        return pd.read_csv(csv_path, dtype=str, keep_default_na=False).to_dict("records") if csv_path.exists() else []

    layers_stem = args.output.parent / f"{args.output.name}_int8_layers"
    search_stem = args.output.parent / f"{args.output.name}_int8_search"
    rows, layer_rows, search_rows = earlier(args.output), earlier(layers_stem), earlier(search_stem)
    for detector in args.detectors:
        work = args.work / detector
        saved = work / "exports.json"
        if args.reuse and saved.is_file():  # what an earlier run trained and exported
            saved_run = json.loads(saved.read_text())
            exports = {name: Path(path) for name, path in saved_run["exports"].items()}
            arrays, full_resolution = work / "test_set.npz", saved_run["full_resolution"]
        else:
            exports, arrays, full_resolution = train_and_export(detector, work)
            _save_exports(saved, exports, full_resolution)  # a run stopped later reuses the training
        # made on every run (seconds), so that the scoring arithmetic kept in FP32 is this version's
        started = time.perf_counter()
        exports["openvino_int8_ptq_ignored"] = int8_layers.save(
            int8_layers.quantize(exports["openvino_fp32"], _validation_arrays(detector, work)["images"]),
            work / "openvino_int8_ptq_ignored",
        )
        print(f"{detector}: exported openvino_int8_ptq_ignored in {time.perf_counter() - started:.0f} s", flush=True)
        if detector in LAYER_SEARCH:
            sensitivity, steps = layer_search(detector, work, exports, reuse=args.reuse)
            layer_rows = [row for row in layer_rows if row["detector"] != detector] + sensitivity
            search_rows = [row for row in search_rows if row["detector"] != detector] + steps
            write_tables(layer_rows, layers_stem)
            write_tables(search_rows, search_stem)
        _save_exports(saved, exports, full_resolution)
        measured = evaluate(detector, exports, arrays, args.repeats, full_resolution=full_resolution)
        rows = [row for row in rows if row["detector"] != detector] + measured
        write_tables(rows, args.output)
    print(f"wrote {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
