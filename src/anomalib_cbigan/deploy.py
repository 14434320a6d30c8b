"""Deployment: anomalib's OpenVINO inferencer with clear errors for bad input, and heat maps for a folder.

anomalib's ``OpenVINOInferencer`` hands any array to the compiled model, so a wrong size or
channel count surfaces as an OpenVINO shape error, and a non-image file as a PIL error.
:class:`CheckedOpenVINOInferencer` checks first and says what is wrong and what to do; it also
defaults to FP32 inference (OpenVINO's CPU plugin otherwise picks bf16 where the CPU has it,
which moves scores by about 1e-3). :func:`write_heatmaps` scores every image of a folder and
writes one picture per image (input, heat map over it, predicted mask) and a scores table.

Example:
    >>> from anomalib_cbigan.deploy import CheckedOpenVINOInferencer
    >>> inferencer = CheckedOpenVINOInferencer("weights/openvino/model.xml")  # doctest: +SKIP
    >>> inferencer.predict("image.png").pred_score  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from anomalib.data import NumpyImageBatch
from anomalib.deploy import OpenVINOInferencer
from PIL import Image, UnidentifiedImageError

from anomalib_cbigan.atomic_files import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class CheckedOpenVINOInferencer(OpenVINOInferencer):
    """``OpenVINOInferencer`` that validates each input against the exported model first.

    Args:
        path (str | Path): The exported ``model.xml``.
        device (str): OpenVINO device. Defaults to ``"CPU"``.
        precision (str): ``INFERENCE_PRECISION_HINT``: ``"f32"`` (default), ``"bf16"`` or ``"f16"``.
        config (dict | None): More OpenVINO properties.
    """

    def __init__(self, path: str | Path, device: str = "CPU", precision: str = "f32", config: dict | None = None):
        path = Path(path)
        if not path.is_file():
            msg = f"no exported model at {path}: pass the model.xml written by `anomalib export --export_type openvino`"
            raise FileNotFoundError(msg)
        super().__init__(path, device=device, config={"INFERENCE_PRECISION_HINT": precision, **(config or {})})
        shape = self.input_blob.get_partial_shape()
        self.channels = shape[1].get_length() if shape[1].is_static else None
        static = shape[2].is_static and shape[3].is_static
        self.static_size = (shape[2].get_length(), shape[3].get_length()) if static else None

    @staticmethod
    def read(path: str | Path) -> np.ndarray:
        """An image file as an RGB float array in [0, 1], or a clear error."""
        path = Path(path)
        if not path.is_file():
            msg = f"{path} does not exist or is not a file"
            raise FileNotFoundError(msg)
        try:
            with Image.open(path) as image:
                image.load()
                return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as error:
            msg = f"{path} is not an image file that can be read ({error}); pass PNG, JPEG, BMP or TIFF images"
            raise ValueError(msg) from error

    def check(self, image: np.ndarray) -> np.ndarray:
        """Channels-last or channels-first array of one image (or a batch) -> NCHW float32, checked."""
        array = np.asarray(image, dtype=np.float32)
        if array.ndim == 2:
            msg = (
                f"got a single-channel image {array.shape}; the model takes RGB: convert it (e.g. PIL .convert('RGB'))"
            )
            raise ValueError(msg)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            msg = f"expected an image (H, W, C), (C, H, W) or a batch (N, C, H, W), got shape {array.shape}"
            raise ValueError(msg)
        if array.shape[1] not in (1, 3, 4) and array.shape[-1] in (1, 3, 4):
            array = array.transpose(0, 3, 1, 2)
        expected = self.channels or 3
        if array.shape[1] != expected:
            msg = (
                f"the model takes {expected}-channel images, got {array.shape[1]} channels (shape {image.shape}); "
                "convert grayscale or RGBA images to RGB"
            )
            raise ValueError(msg)
        if self.static_size is not None and tuple(array.shape[-2:]) != self.static_size:
            msg = (
                f"this export takes {self.static_size[0]}x{self.static_size[1]} images, got "
                f"{array.shape[-2]}x{array.shape[-1]}; resize them, or export without --input_size so the "
                "model's own pre-processing resizes any size"
            )
            raise ValueError(msg)
        if array.max() > 1.0:
            array = array / 255.0
        return np.ascontiguousarray(array)

    def predict(self, image: str | Path | np.ndarray | torch.Tensor) -> NumpyImageBatch:
        """Score one image (a path, an array or a tensor) after checking it."""
        if isinstance(image, str | Path):
            image = self.read(image)
        elif isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        array = self.check(image)
        predictions = self.post_process(self.model({self.input_blob.any_name: array}))
        return NumpyImageBatch(image=array, **predictions)


def write_heatmaps(inferencer: CheckedOpenVINOInferencer, images: Path, output: Path) -> list[dict]:
    """Score every image under ``images``; write ``<name>.png`` (input | heat map | mask) and ``scores.csv/.md``.

    Returns the rows of the scores table. Unreadable files are reported in the table, not fatal.
    """
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    import torch.nn.functional as F

    from anomalib_cbigan.reports import write_tables

    files = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        msg = f"no images ({', '.join(IMAGE_SUFFIXES)}) under {images}"
        raise FileNotFoundError(msg)
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in files:
        try:
            image = inferencer.read(path)
            prediction = inferencer.predict(image)
        except ValueError as error:
            rows.append({"image": str(path), "pred_score": "", "pred_label": "", "error": str(error)})
            continue
        anomaly_map = torch.as_tensor(np.asarray(prediction.anomaly_map, dtype=np.float32)).reshape(1, 1, *np.asarray(
            prediction.anomaly_map).shape[-2:])  # fmt: skip
        heat = F.interpolate(anomaly_map, size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
        mask = np.asarray(prediction.pred_mask).reshape(np.asarray(prediction.anomaly_map).shape[-2:])
        score = float(np.asarray(prediction.pred_score).reshape(-1)[0])
        label = bool(np.asarray(prediction.pred_label).reshape(-1)[0])
        figure, axes = plt.subplots(1, 3, figsize=(9, 3.2))
        axes[0].imshow(image)
        axes[0].set_title(path.name, fontsize=8)
        axes[1].imshow(image)
        axes[1].imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes[1].set_title(f"score {score:.3f} ({'anomalous' if label else 'normal'})", fontsize=8)
        axes[2].imshow(mask, cmap="gray", vmin=0, vmax=1)
        axes[2].set_title("predicted mask", fontsize=8)
        for axis in axes:
            axis.set_xticks([])
            axis.set_yticks([])
        figure.tight_layout()
        target = output / f"{path.parent.name}_{path.stem}.png"
        with atomic_path(target) as tmp:
            figure.savefig(tmp, dpi=100)
        plt.close(figure)
        rows.append({"image": str(path), "pred_score": round(score, 4), "pred_label": int(label), "error": ""})
    write_tables(rows, output / "scores")
    return rows
