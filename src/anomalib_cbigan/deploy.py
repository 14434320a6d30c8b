"""Deployment with anomalib's OpenVINO inferencer, with clear errors for bad input.

anomalib's ``OpenVINOInferencer`` hands any array to the compiled model, so a wrong size or
channel count surfaces as an OpenVINO shape error, and a non-image file as a PIL error.
:class:`CheckedOpenVINOInferencer` checks first (the checks of :mod:`anomalib_cbigan.edge_inference`) and says
what is wrong and what to do; it also defaults to FP32 inference (OpenVINO's CPU plugin otherwise computes in
bf16 where the CPU has it). For a folder of images, heat maps and a scores table, or inference without torch,
see :mod:`anomalib_cbigan.edge_inference`.

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

from anomalib_cbigan.edge_inference import channels_and_static_size, check_batch, read_image


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
        self.channels, self.static_size = channels_and_static_size(self.input_blob.get_partial_shape())

    @staticmethod
    def read(path: str | Path) -> np.ndarray:
        """An image file as an RGB float array in [0, 1], or a clear error."""
        return read_image(path)

    def check(self, image: np.ndarray) -> np.ndarray:
        """Channels-last or channels-first array of one image (or a batch) -> NCHW float32, checked."""
        return check_batch(image, self.channels, self.static_size)

    def predict(self, image: str | Path | np.ndarray | torch.Tensor) -> NumpyImageBatch:
        """Score one image (a path, an array or a tensor) after checking it."""
        if isinstance(image, str | Path):
            image = self.read(image)
        elif isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        array = self.check(image)
        predictions = self.post_process(self.model({self.input_blob.any_name: array}))
        return NumpyImageBatch(image=array, **predictions)
