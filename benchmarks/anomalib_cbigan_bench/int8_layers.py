"""Which operations of an exported detector cost accuracy in INT8: NNCF post-training quantisation with chosen
operations kept in FP32, and a search for the fewest such operations that keep the detector, decided on a
validation split only.

The search: every operation NNCF quantises (the layers of the networks, and the residual additions, poolings,
upsamplings and reshapes between them: whatever gets an INT8 input) is quantised alone, the rest of the graph left
in FP32, and its sensitivity is how far that moves the validation scores' ranking away from the FP32 model's
(1 - Spearman correlation). The most sensitive operations are then kept in FP32, 0, 1, 2, 4, ... of them,
until the INT8 model keeps FP32's validation ranking (Spearman >= ``min_rank_correlation``) and its validation
image AUROC (within ``max_drop``): both, because a validation split that cannot tell the detector's real defects
apart can keep its AUROC while the scores are noise. Test images are scored at every step for the report, never
for the choice.

Example:
    >>> from anomalib_cbigan_bench.int8_layers import quantize, quantized_operations  # doctest: +SKIP
    >>> list(quantized_operations(quantize(Path("model.xml"), images)))[:2]  # doctest: +SKIP
    ['node_Conv_413', 'node_Conv_414']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Where the scoring arithmetic starts: the magnitude of a residual (|x - G(E(x))|, |f(x) - f(G(E(x)))|, GANomaly's
# squared latent difference). It and everything after it (sums, weights, maps, anomalib's normalisation and
# thresholds) stay in FP32 in every quantisation here: NNCF would otherwise put an 8-bit quantiser on the raw score
# itself, with a range calibrated on too few images to hold the test's.
RESIDUAL_MAGNITUDES = ("Abs", "Power", "SquaredDifference")


def scoring_operations(model: Any) -> list[str]:  # noqa: ANN401
    """Friendly names of the scoring arithmetic of an OpenVINO model: every residual magnitude
    (:data:`RESIDUAL_MAGNITUDES`), the subtractions feeding it, and every operation after it."""
    scoring: set[str] = set()
    for op in model.get_ordered_ops():  # topological: an operation's inputs come before it
        inputs = [value.get_node() for value in op.input_values()]
        if op.get_type_name() in RESIDUAL_MAGNITUDES or any(node.get_friendly_name() in scoring for node in inputs):
            scoring.add(op.get_friendly_name())
            scoring.update(node.get_friendly_name() for node in inputs if node.get_type_name() == "Subtract")
    return [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_friendly_name() in scoring]


def quantized_operations(model: Any) -> dict[str, str]:  # noqa: ANN401
    """``{name: type}`` of the operations of a quantised OpenVINO model that take an INT8 (fake-quantised) input,
    in graph order."""
    operations = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize":
            for target in (target for output in op.outputs() for target in output.get_target_inputs()):
                operations[target.get_node().get_friendly_name()] = target.get_node().get_type_name()
    order = {op.get_friendly_name(): position for position, op in enumerate(model.get_ordered_ops())}
    return dict(sorted(operations.items(), key=lambda item: order[item[0]]))


def quantize(fp32: Path, images: np.ndarray, fp32_operations: Sequence[str] = ()) -> Any:  # noqa: ANN401
    """NNCF PTQ of the model at ``fp32``, calibrated on ``images`` (N, C, H, W), with the scoring arithmetic
    (:func:`scoring_operations`) and ``fp32_operations`` left in FP32."""
    import nncf
    import openvino

    model = openvino.Core().read_model(fp32)
    calibration = nncf.Dataset([images[i : i + 1] for i in range(len(images))])
    ignored = nncf.IgnoredScope(names=[*scoring_operations(model), *fp32_operations], validate=False)
    return nncf.quantize(model, calibration, ignored_scope=ignored, subset_size=len(images))


def raw_score(model: Any) -> Any:  # noqa: ANN401
    """The image score before anomalib's normalisation: the operation that ``pred_score``'s chain compares with the
    image threshold (a ``Greater`` with a constant), else ``pred_score`` itself. The search ranks this, because the
    normalisation, fitted to FP32's scores, clamps a shifted INT8 score to 0 or 1 and hides its ranking."""
    result = next(output for output in model.outputs if "pred_score" in output.get_names()).get_node()
    pending, seen = [result], set()
    while pending:
        node = pending.pop(0)
        if node.get_friendly_name() in seen:
            continue
        seen.add(node.get_friendly_name())
        inputs = list(node.input_values())
        constant = [value.get_node().get_type_name() == "Constant" for value in inputs]
        if node.get_type_name() == "Greater" and any(constant):
            return next(value for value, is_constant in zip(inputs, constant, strict=True) if not is_constant)
        pending += [value.get_node() for value in inputs]
    return result.input_value(0)


def image_scores(model: Any, images: np.ndarray) -> np.ndarray:  # noqa: ANN401
    """The raw score (:func:`raw_score`) of every image, one at a time, computed in FP32 arithmetic on the CPU."""
    import openvino

    model = model.clone()  # the raw score becomes an extra output of this copy only
    model.add_outputs([raw_score(model)])
    compiled = openvino.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    score = compiled.outputs[-1]
    return np.array([float(np.asarray(compiled(images[i : i + 1])[score]).reshape(-1)[0]) for i in range(len(images))])


@dataclass
class Split:
    """Images (N, C, H, W) in [0, 1] at the model's input size, their labels, and FP32's scores on them."""

    images: np.ndarray
    labels: np.ndarray
    fp32_scores: np.ndarray = field(default_factory=lambda: np.empty(0))

    def agreement(self, scores: np.ndarray) -> tuple[float, float]:
        """(image AUROC, Spearman correlation with FP32's scores) of ``scores`` on this split."""
        from scipy.stats import spearmanr
        from sklearn.metrics import roc_auc_score

        rank = float(spearmanr(scores, self.fp32_scores).statistic)
        # constant scores (a saturated INT8 model) have no ranking: correlation 0, not NaN
        return float(roc_auc_score(self.labels, scores)), 0.0 if np.isnan(rank) else rank


@dataclass
class SearchResult:
    """Per-operation sensitivities, the search's steps, and the operations it keeps in FP32 (``None``: none of its
    steps kept the detector on validation)."""

    sensitivity: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    chosen: list[str] | None


def search(
    fp32: Path,
    validation: Split,
    test: Split,
    max_drop: float = 0.01,
    min_rank_correlation: float = 0.99,
) -> SearchResult:
    """The fewest FP32 operations (most sensitive first) whose INT8 model keeps the detector on ``validation``."""
    import openvino

    reference = openvino.Core().read_model(fp32)
    # NNCF moves quantisers to the neighbours of operations kept in FP32: gather them all, so that keeping every
    # one of them in FP32 leaves no quantiser at all.
    types: dict[str, str] = {}
    while found := {name: kind
                    for name, kind in quantized_operations(quantize(fp32, validation.images, list(types))).items()
                    if name not in types}:  # fmt: skip
        types |= found
    operations = list(types)
    for split in (validation, test):
        split.fp32_scores = image_scores(reference, split.images)
    fp32_auroc = validation.agreement(validation.fp32_scores)[0]

    sensitivity = []
    for position, operation in enumerate(operations):
        scores = image_scores(quantize(fp32, validation.images, [other for other in operations if other != operation]),
                              validation.images)  # fmt: skip
        auroc, rank = validation.agreement(scores)
        sensitivity.append({"operation": operation, "type": types[operation], "position": position,
                            "val_image_AUROC": round(auroc, 4), "val_rank_correlation": round(rank, 4)})  # fmt: skip
    order = [row["operation"] for row in sorted(sensitivity, key=lambda row: row["val_rank_correlation"])]

    steps, chosen = [], None
    total = len(operations)
    counts = sorted({0, total} | {2**i for i in range(total.bit_length()) if 2**i < total})
    for count in counts:
        kept = order[:count]
        model = quantize(fp32, validation.images, kept)
        val_auroc, val_rank = validation.agreement(image_scores(model, validation.images))
        test_auroc, test_rank = test.agreement(image_scores(model, test.images))
        keeps = fp32_auroc - val_auroc <= max_drop and val_rank >= min_rank_correlation
        steps.append({"fp32_operations": count, "of_quantized": len(operations),
                      "val_image_AUROC": round(val_auroc, 4), "val_fp32_image_AUROC": round(fp32_auroc, 4),
                      "val_rank_correlation": round(val_rank, 4), "keeps_detector_on_val": keeps,
                      "test_image_AUROC": round(test_auroc, 4),
                      "test_rank_correlation": round(test_rank, 4)})  # fmt: skip
        print(f"int8 layer search: {steps[-1]}", flush=True)
        if keeps:
            chosen = kept
            break
    return SearchResult(sensitivity, steps, chosen)


def save(model: Any, export_root: Path) -> Path:  # noqa: ANN401
    """Write ``model`` as ``export_root/model.xml`` (weights as they are: INT8 and FP32)."""
    import openvino

    export_root.mkdir(parents=True, exist_ok=True)
    path = export_root / "model.xml"
    openvino.save_model(model, path, compress_to_fp16=False)
    return path
