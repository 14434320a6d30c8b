"""The paper's maximum balanced accuracy against scikit-learn's ROC, by hand, and in anomalib's Evaluator; raw-score AUROC."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from anomalib.data import ImageBatch, InferenceBatch
from anomalib.metrics import AUROC, Evaluator
from sklearn.metrics import roc_auc_score, roc_curve

from anomalib_cbigan import Cbigan
from anomalib_cbigan.metrics import MaxBalancedAccuracy, raw_image_auroc
from anomalib_cbigan.metrics.balanced_accuracy import _MaxBalancedAccuracy


def _sklearn(scores: np.ndarray, labels: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.max((tpr + 1 - fpr) / 2))


@pytest.mark.parametrize("seed", range(5))
def test_equals_scikit_learn_on_random_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    labels[:2] = [0, 1]
    scores = rng.normal(size=200) + labels * rng.uniform(0, 2)
    if seed % 2:
        scores = np.round(scores, 1)  # many ties
    metric = _MaxBalancedAccuracy()
    for chunk in np.array_split(np.arange(200), 7):  # incremental updates
        metric.update(torch.tensor(scores[chunk]), torch.tensor(labels[chunk]))
    assert float(metric.compute()) == pytest.approx(_sklearn(scores, labels), abs=1e-6)


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),  # separable
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.5),  # inverted: the best threshold predicts all normal
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),  # all tied
        ([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.75),  # a tie across classes moves as one
        ([1e4, 2e4, 3e4, 5e4], [0, 1, 0, 1], 0.75),  # raw scores far outside [0, 1]: no sigmoid saturation
    ],
)
def test_hand_made_cases(scores: list[float], labels: list[int], expected: float) -> None:
    metric = _MaxBalancedAccuracy()
    metric.update(torch.tensor(scores), torch.tensor(labels))
    assert float(metric.compute()) == pytest.approx(expected)
    assert expected == pytest.approx(_sklearn(np.array(scores), np.array(labels)))


def test_one_class_only_warns_and_gives_nan() -> None:
    metric = _MaxBalancedAccuracy()
    metric.update(torch.tensor([0.1, 0.7]), torch.tensor([0, 0]))
    with pytest.warns(RuntimeWarning, match="one class only"):
        assert torch.isnan(metric.compute())


def test_bad_input_is_a_clear_error() -> None:
    metric = _MaxBalancedAccuracy()
    with pytest.raises(ValueError, match="binary targets"):
        metric.update(torch.tensor([0.1, 0.7]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="NaN scores"):
        metric.update(torch.tensor([float("nan"), 0.7]), torch.tensor([0, 1]))


def test_plugs_into_anomalibs_evaluator_next_to_auroc() -> None:
    evaluator = Evaluator(test_metrics=[
        AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
        MaxBalancedAccuracy(fields=["pred_score", "gt_label"], prefix="image_"),
    ])  # fmt: skip
    batch = ImageBatch(image=torch.rand(4, 3, 8, 8), pred_score=torch.tensor([0.1, 0.6, 0.4, 0.9]),
                       gt_label=torch.tensor([0, 0, 1, 1]))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for metric in evaluator.test_metrics:
            metric.update(batch)
        values = {metric.name: float(metric.compute()) for metric in evaluator.test_metrics}
    assert values == {"image_AUROC": pytest.approx(0.75), "image_MaxBalancedAccuracy": pytest.approx(0.75)}


class _ScoreIsMeanTimes(torch.nn.Module):
    """A stand-in torch model whose raw score is the image mean times a large factor."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, images: torch.Tensor) -> InferenceBatch:
        return InferenceBatch(pred_score=images.mean(dim=(1, 2, 3)) * self.factor)


@pytest.mark.parametrize("factor", [1e-3, 1.0, 1e4])
def test_raw_image_auroc_equals_scikit_learn_at_any_score_scale(factor: float) -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(20, 3, 32, 32, generator=generator)
    labels = torch.tensor([0, 1] * 10)
    images += labels.view(-1, 1, 1, 1) * torch.rand(20, 1, 1, 1, generator=generator) * 0.01
    model = Cbigan(input_size=(32, 32))
    model.model = _ScoreIsMeanTimes(factor)
    batches = [ImageBatch(image=images[:10], gt_label=labels[:10]), ImageBatch(image=images[10:], gt_label=labels[10:])]
    # Raw scores of 1e3 and more would all become 1.0 through torchmetrics' sigmoid (AUROC 0.5).
    expected = roc_auc_score(labels.numpy(), images.mean(dim=(1, 2, 3)).numpy())
    assert raw_image_auroc(model, batches) == pytest.approx(expected)
    assert 0.5 < expected < 1.0
