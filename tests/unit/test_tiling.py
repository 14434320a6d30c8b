"""Tiled scoring covers images of any size with their own pixels, and a resize sets the size the tiles cover."""

from __future__ import annotations

import pytest
import torch
from anomalib.data.utils.tiler import Tiler
from anomalib.pre_processing import PreProcessor
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import Compose, Normalize, Resize

from anomalib_cbigan import Cbigan, Egbad
from anomalib_cbigan.models.cbigan.torch_model import CbiganModel
from anomalib_cbigan.models.tiling import EdgeAlignedTiler, tile_starts


def test_on_multiples_of_the_tile_the_tiles_and_the_stitched_map_are_anomalibs() -> None:
    images, maps = torch.rand(2, 3, 128, 192), torch.rand(12, 1, 64, 64)
    ours, anomalibs = EdgeAlignedTiler(64), Tiler(tile_size=64, stride=64)
    assert torch.equal(ours.tile(images), anomalibs.tile(images))
    assert torch.equal(ours.untile(maps), anomalibs.untile(maps))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(height=st.integers(64, 300), width=st.integers(64, 300), batch=st.integers(1, 2))
def test_tiles_are_the_images_own_pixels_and_stitch_back_to_it(height: int, width: int, batch: int) -> None:
    images = torch.rand(batch, 3, height, width)
    tiler = EdgeAlignedTiler(64)
    tiles = tiler.tile(images).view(batch, -1, 3, 64, 64)
    starts = [(r, c) for r in tile_starts(height, 64) for c in tile_starts(width, 64)]
    assert tiles.shape[1] == len(starts)
    for index, (row, col) in enumerate(starts):
        assert torch.equal(tiles[:, index], images[:, :, row : row + 64, col : col + 64])
    torch.testing.assert_close(tiler.untile(tiles.flatten(0, 1)), images)


@pytest.mark.parametrize(
    ("size", "rows", "cols"),
    [((128, 192), (0, 64), (0, 64, 128)), ((100, 150), (0, 36), (0, 64, 86))],  # the last: edge-aligned tiles
)
def test_tiled_scoring_takes_the_maximum_tile_score_and_stitches_the_maps(
    size: tuple[int, int], rows: tuple[int, ...], cols: tuple[int, ...]
) -> None:
    # The paper's texture protocol: every input_size tile scored, image score = max over tiles.
    torch.manual_seed(0)
    model = CbiganModel(input_size=(64, 64), tile_images=True).eval()
    images = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        output = model(images)
        per_tile = [model.score(images[:, :, r : r + 64, c : c + 64]) for r in rows for c in cols]
    torch.testing.assert_close(output.pred_score, torch.stack([t.pred_score for t in per_tile], dim=1).amax(dim=1))
    assert output.anomaly_map.shape == (2, 1, *size)
    # the bottom-right tile's map, where no other tile overlaps it
    row, col = rows[-1], cols[-1]
    top, left = max(rows[-2] + 64 - row, 0), max(cols[-2] + 64 - col, 0)
    corner = output.anomaly_map[..., row + top :, col + left :]
    torch.testing.assert_close(corner, per_tile[-1].anomaly_map[..., top:, left:])


def resizing_to(size: list[int]) -> PreProcessor:
    return PreProcessor(transform=Compose([Resize(size, antialias=True), Normalize([0.5] * 3, [0.5] * 3)]))


@pytest.mark.parametrize("model_class", [Cbigan, Egbad])
@pytest.mark.parametrize("size", [[256, 256], [640, 256], [64, 96]])
def test_with_tiles_a_resize_sets_the_image_size_and_the_networks_keep_their_tile(
    model_class: type, size: list[int]
) -> None:
    model = model_class(pre_processor=resizing_to(size), visualizer=False)
    assert model.input_size == tuple(size)  # what the pre-processor gives the tiles
    assert model.model.input_size == (64, 64) and model.model.tiler is not None
    with torch.no_grad():
        output = model.model.eval()(torch.rand(1, 3, *size) * 2 - 1)
    assert output.anomaly_map.shape[-2:] == tuple(size)


def test_with_tiles_a_resize_below_one_tile_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"resizes them to 32x256, smaller than one 64x64 tile.*tile_images=False"):
        Cbigan(pre_processor=resizing_to([32, 256]))


def test_without_tiles_a_resize_sets_the_networks_size() -> None:
    model = Cbigan(tile_images=False, patches_per_epoch=0, pre_processor=resizing_to([128, 128]), visualizer=False)
    assert model.model.input_size == (128, 128) and model.model.tiler is None
