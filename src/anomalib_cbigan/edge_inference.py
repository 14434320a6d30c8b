"""Score images with an exported OpenVINO model using only ``openvino``, ``numpy`` and ``pillow``.

An edge device needs neither torch, Lightning nor anomalib to run a model exported by ``anomalib export
--export_type openvino``: the graph already holds the networks, anomalib's score normalisation and its
thresholds (and the pre-processor's resize, if the model has one). This file is self-contained: copy it beside
``model.xml`` and run it, or import it from the installed package (``anomalib_cbigan.edge_inference``)::

    python edge_inference.py model.xml images/ results/

What it adds to the graph: images read as RGB in [0, 1] (grayscale, RGBA and palette images converted, as
anomalib's ``read_image`` does), brought to the model's input size with the antialiased bilinear resize of the
training pre-processor (torchvision's ``Resize(antialias=True)``; the exported graph's own resize cannot
antialias), FP32 inference unless asked otherwise (OpenVINO's CPU plugin otherwise computes in bf16 where the
CPU has it), and clear errors for input the model cannot take. anomalib 2.7 writes no metadata beside the
model, so the input size is read from the graph: the input's static size, or else the output size of the
pre-processor's resize.

:class:`anomalib_cbigan.deploy.CheckedOpenVINOInferencer` (anomalib's inferencer) uses the same checks.

Example:
    >>> from anomalib_cbigan.edge_inference import EdgeInferencer
    >>> inferencer = EdgeInferencer("weights/openvino/model.xml")  # doctest: +SKIP
    >>> prediction = inferencer.predict("image.png")  # doctest: +SKIP
    >>> prediction.score, prediction.label, prediction.anomaly_map.shape  # doctest: +SKIP
    (0.73, True, (256, 256))
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
OUTPUTS = ("pred_score", "pred_label", "anomaly_map", "pred_mask")  # anomalib's exported outputs, by name


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an RGB float32 (H, W, 3) array in [0, 1], or a clear error."""
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


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (H, W, C) resized to ``size`` (height, width): bilinear, antialiased when shrinking, in float32.

    PIL's float resampling is the filter torchvision's ``Resize(antialias=True)`` reproduces, the training
    pre-processor's; each channel is resized on its own, so there is no rounding to 8 bits.
    """
    if tuple(image.shape[:2]) == tuple(size):
        return image
    height, width = size
    channels = [Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), mode="F")
                .resize((width, height), Image.Resampling.BILINEAR) for c in range(image.shape[-1])]  # fmt: skip
    return np.stack([np.asarray(channel, dtype=np.float32) for channel in channels], axis=-1)


def check_batch(image: np.ndarray, channels: int | None, static_size: tuple[int, int] | None) -> np.ndarray:
    """A channels-last or channels-first image (or a batch) -> NCHW float32 in [0, 1], checked against the model.

    Raises:
        ValueError: saying what is wrong (rank, channels, size for a static export) and what to do.
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        msg = f"got a single-channel image {array.shape}; the model takes RGB: convert it (e.g. PIL .convert('RGB'))"
        raise ValueError(msg)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        msg = f"expected an image (H, W, C), (C, H, W) or a batch (N, C, H, W), got shape {array.shape}"
        raise ValueError(msg)
    if array.shape[1] not in (1, 3, 4) and array.shape[-1] in (1, 3, 4):
        array = array.transpose(0, 3, 1, 2)
    expected = channels or 3
    if array.shape[1] != expected:
        msg = (
            f"the model takes {expected}-channel images, got {array.shape[1]} channels (shape {np.shape(image)}); "
            "convert grayscale or RGBA images to RGB"
        )
        raise ValueError(msg)
    if static_size is not None and tuple(array.shape[-2:]) != tuple(static_size):
        msg = (
            f"this export takes {static_size[0]}x{static_size[1]} images, got {array.shape[-2]}x{array.shape[-1]}; "
            "resize them, or export without --input_size so the model's own pre-processing resizes any size"
        )
        raise ValueError(msg)
    if array.max() > 1.0:
        array = array / 255.0
    return np.ascontiguousarray(array)


def channels_and_static_size(shape: object) -> tuple[int | None, tuple[int, int] | None]:
    """The channel count and (height, width) of an NCHW input's ``PartialShape``, each ``None`` where dynamic."""
    channels = shape[1].get_length() if shape[1].is_static else None
    static = (shape[2].get_length(), shape[3].get_length()) if shape[2].is_static and shape[3].is_static else None
    return channels, static


def input_layout(model: object) -> tuple[int | None, tuple[int, int] | None, tuple[int, int] | None]:
    """``(channels, static size, training size)`` of an ``openvino.Model``.

    The training size is what images are resized to before the graph: the static input size, or else the
    output size of the graph's first resize to a fixed size (the pre-processor's), or ``None`` (the model takes
    any size as it is, e.g. FCBiGAN or CBiGAN's tiles).
    """
    channels, static = channels_and_static_size(model.input(0).get_partial_shape())
    if static is not None:
        return channels, static, static
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Interpolate":
            out = op.get_output_partial_shape(0)
            if out.rank.is_static and len(out) == 4 and out[2].is_static and out[3].is_static:  # noqa: PLR2004
                return channels, None, (out[2].get_length(), out[3].get_length())
    return channels, None, None


@dataclass(frozen=True)
class Prediction:
    """One image's result: normalised score, label, and (for models that make them) anomaly map and mask at the
    model's input size."""

    score: float
    label: bool
    anomaly_map: np.ndarray | None  # (H, W) float32; None for image-level models (GANomaly)
    mask: np.ndarray | None  # (H, W) bool


class EdgeInferencer:
    """An exported anomalib model on OpenVINO, with only numpy and pillow beside it.

    Args:
        path (str | Path): The exported ``model.xml``.
        device (str): OpenVINO device. Defaults to ``"CPU"``.
        precision (str | None): ``INFERENCE_PRECISION_HINT``: ``"f32"`` (default), ``"bf16"`` or ``"f16"``; ``None``
            leaves the choice to OpenVINO (bf16 on CPUs that have it), as anomalib's ``OpenVINOInferencer`` does.
    """

    def __init__(self, path: str | Path, device: str = "CPU", precision: str | None = "f32") -> None:
        import openvino as ov

        path = Path(path)
        if not path.is_file():
            msg = f"no exported model at {path}: pass the model.xml written by `anomalib export --export_type openvino`"
            raise FileNotFoundError(msg)
        core = ov.Core()
        model = core.read_model(path)
        self.channels, self.static_size, self.input_size = input_layout(model)
        hint = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
        self.compiled = core.compile_model(model, device, hint)
        self.input_name = self.compiled.input(0).any_name

    def to_input_size(self, image: np.ndarray) -> np.ndarray:
        """An (H, W, C) image resized to the model's input size as the training pre-processor did (if it has one)."""
        return image if self.input_size is None else resize(image, self.input_size)

    def prepare(self, image: str | Path | Image.Image | np.ndarray) -> np.ndarray:
        """A file or PIL image read, converted to RGB and resized to the input size; an array checked as it is."""
        if isinstance(image, str | Path):
            image = self.to_input_size(read_image(image))
        elif isinstance(image, Image.Image):
            image = self.to_input_size(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
        return check_batch(image, self.channels, self.static_size)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's outputs for a checked NCHW batch, by name."""
        results = self.compiled({self.input_name: batch})
        return {next(iter(output.get_names())): np.asarray(value) for output, value in results.items()}

    def predict(self, image: str | Path | Image.Image | np.ndarray) -> Prediction:
        """Score one image: a path or PIL image (resized as in training), or an array at the model's input size."""
        batch = self.prepare(image)
        if batch.shape[0] != 1:
            msg = f"predict scores one image, got a batch of {batch.shape[0]}: use run() for batches"
            raise ValueError(msg)
        outputs = self.run(batch)
        anomaly_map = outputs.get("anomaly_map")
        if anomaly_map is not None:
            anomaly_map = anomaly_map.reshape(anomaly_map.shape[-2:]).astype(np.float32)
        mask = outputs.get("pred_mask")
        return Prediction(
            score=float(outputs["pred_score"].reshape(-1)[0]),
            label=bool(outputs["pred_label"].reshape(-1)[0]),
            anomaly_map=anomaly_map,
            mask=None if mask is None or anomaly_map is None else mask.reshape(anomaly_map.shape).astype(bool),
        )


def _jet(values: np.ndarray) -> np.ndarray:
    """matplotlib's 'jet' colour map of ``values`` in [0, 1], as uint8 RGB."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * v - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


def heat_map_picture(image: np.ndarray, prediction: Prediction, title: str) -> Image.Image:
    """Input | heat map over it | predicted mask, side by side, with the score in the caption (the input alone for
    models without maps)."""
    height, width = image.shape[:2]
    rgb = (np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    caption = 18
    verdict = "anomalous" if prediction.label else "normal"
    if prediction.anomaly_map is None:
        picture = Image.new("RGB", (width, height + caption), "white")
        picture.paste(Image.fromarray(rgb), (0, caption))
        ImageDraw.Draw(picture).text((4, 3), f"{title}: score {prediction.score:.3f} ({verdict})", fill="black")
        return picture
    heat = np.asarray(Image.fromarray(prediction.anomaly_map, mode="F").resize((width, height), Image.Resampling.BILINEAR))
    mask = Image.fromarray(prediction.mask.astype(np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
    overlay = (0.5 * rgb + 0.5 * _jet(heat)).astype(np.uint8)
    picture = Image.new("RGB", (3 * width, height + caption), "white")
    for index, panel in enumerate((Image.fromarray(rgb), Image.fromarray(overlay), mask.convert("RGB"))):
        picture.paste(panel, (index * width, caption))
    ImageDraw.Draw(picture).text((4, 3), f"{title}: score {prediction.score:.3f} ({verdict})", fill="black")
    return picture


def _replace_into(path: Path, write: object) -> None:
    """Write through a temporary file renamed into place, so a killed run leaves no half-written file (the
    package's ``atomic_files`` does the same; this file imports nothing of the package, to run alone)."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def score_folder(inferencer: EdgeInferencer, images: str | Path, output: str | Path) -> list[dict]:
    """Score every image under ``images``; write ``<folder>_<name>.png`` (input | heat map | mask) per image and
    ``scores.csv``. Unreadable files are rows with an error, not fatal. Returns the rows."""
    images, output = Path(images), Path(output)
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        msg = f"no images ({', '.join(IMAGE_SUFFIXES)}) under {images}"
        raise FileNotFoundError(msg)
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in files:
        try:
            image = read_image(path)
            prediction = inferencer.predict(inferencer.to_input_size(image))
        except ValueError as error:
            rows.append({"image": str(path), "pred_score": "", "pred_label": "", "error": str(error)})
            continue
        picture = heat_map_picture(image, prediction, path.name)
        _replace_into(output / f"{path.parent.name}_{path.stem}.png", lambda tmp: picture.save(tmp, format="PNG"))  # noqa: B023
        rows.append({"image": str(path), "pred_score": round(prediction.score, 6), "pred_label": int(prediction.label),
                     "error": ""})  # fmt: skip

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    _replace_into(output / "scores.csv", write_csv)
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python edge_inference.py MODEL_XML IMAGES OUTPUT [--device CPU] [--precision f32]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="model.xml written by `anomalib export --export_type openvino`")
    parser.add_argument("images", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("output", type=Path, help="where the pictures and scores.csv go")
    parser.add_argument("--device", default="CPU", help="OpenVINO device (default: CPU)")
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16", "f16"], help="inference precision")
    args = parser.parse_args(argv)
    try:
        rows = score_folder(EdgeInferencer(args.model, args.device, args.precision), args.images, args.output)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [row for row in rows if row["error"]]
    print(f"scored {len(rows) - len(failed)} images, {len(failed)} unreadable; pictures and scores in {args.output}")
    for row in failed:
        print(f"  {row['image']}: {row['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
