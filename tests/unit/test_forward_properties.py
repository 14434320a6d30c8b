"""Property: every torch model scores any batch it can take and names the problem with any it cannot.

Over batch sizes, channel counts, image sizes and dtypes (hypothesis), for every registered model:
either an ``InferenceBatch`` with one finite score per image and a map of the input's height and
width, or a ``ValueError``/``TypeError`` whose message says what was wrong, never a shape error from
deep inside a convolution.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from anomalib_cbigan import list_models, model_class

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8)
WHAT_WENT_WRONG = ("channels", "weights and got", "built for", "shaped (N, 3, H, W)", "exceeds image size")


@cache
def torch_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return model_class(name)(input_size=(64, 64), visualizer=False).model.eval()


@st.composite
def batches(draw: st.DrawFn) -> torch.Tensor:
    # Weighted towards valid batches (RGB, float32, 4-D, and 64 px for CBiGAN) so both outcomes are exercised.
    size = st.one_of(st.just(64), st.integers(8, 96))
    shape = (draw(st.integers(1, 3)), draw(st.sampled_from([3, 3, 3, 1, 4])), draw(size), draw(size))
    if draw(st.integers(0, 4)) == 0:
        shape = shape[1:]  # a single image without its batch dimension
    images = torch.rand(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 2**16)))) * 2 - 1
    dtype = draw(st.sampled_from((torch.float32,) * 4 + DTYPES[1:]))
    return (images * 127 + 128).to(dtype) if dtype == torch.uint8 else images.to(dtype)


@pytest.mark.parametrize("name", list_models())
@settings(max_examples=40, deadline=None, derandomize=True)
@given(images=batches())
def test_forward_scores_any_valid_batch_and_names_the_problem_with_others(name: str, images: torch.Tensor) -> None:
    model = torch_model(name)
    try:
        with torch.no_grad():
            result = model(images)
    except (ValueError, TypeError) as error:
        assert any(words in str(error) for words in WHAT_WENT_WRONG), str(error)
        event("refused")  # --hypothesis-show-statistics shows how often each outcome was drawn
        return
    event("scored")
    assert images.ndim == 4 and images.shape[1] == 3 and images.dtype == torch.float32
    assert result.pred_score.shape == (images.shape[0],)
    assert torch.isfinite(result.pred_score).all()
    assert result.anomaly_map.shape[0] == images.shape[0]
    assert tuple(result.anomaly_map.shape[-2:]) == tuple(images.shape[-2:])
