"""Tiles that cover an image of any size with image content only, for the models that score tile by tile.

anomalib's ``Tiler`` pads an image whose sides are not multiples of the tile with zeros (mid-grey in the models'
[-1, 1] range) up to the next multiple: the last row and column of tiles then hold a grey band that no model
reconstructs, and with the image score the largest tile score, that band scores every such image, normal or not.
:class:`EdgeAlignedTiler` is anomalib's ``Tiler`` (same interface, same tiles and map where the sides are
multiples of the tile) whose last tile on each side ends at the image's edge instead, overlapping its neighbour;
overlapping map values are averaged when stitched.

Example:
    >>> import torch
    >>> from anomalib_cbigan.models.tiling import EdgeAlignedTiler
    >>> tiler = EdgeAlignedTiler(64)
    >>> tiles = tiler.tile(torch.rand(2, 3, 100, 150))
    >>> tiles.shape  # 2 rows (0, 36) x 3 columns (0, 64, 86) of tiles per image
    torch.Size([12, 3, 64, 64])
    >>> tiler.untile(tiles).shape
    torch.Size([2, 3, 100, 150])
"""

from __future__ import annotations

import torch
from anomalib.data.utils.tiler import Tiler


def tile_starts(length: int, tile: int) -> list[int]:
    """Where the tiles of one side start: every ``tile`` pixels, and the last one ending at the edge.

    Example:
        >>> tile_starts(128, 64), tile_starts(150, 64), tile_starts(64, 64)
        ([0, 64], [0, 64, 86], [0])
    """
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


class EdgeAlignedTiler(Tiler):
    """anomalib's ``Tiler`` with non-overlapping tiles of ``tile_size``, the last on each side aligned to the edge.

    Args:
        tile_size (int | tuple[int, int]): Tile height and width.
    """

    def __init__(self, tile_size: int | tuple[int, int]) -> None:
        super().__init__(tile_size=tile_size, stride=tile_size)
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.pixel_index = torch.zeros(0, dtype=torch.long)

    def tile(self, image: torch.Tensor, use_random_tiling: bool = False) -> torch.Tensor:
        """The tiles of a (N, C, H, W) batch, image by image, row by row: (N * tiles, C, tile_h, tile_w).

        One gather of the flattened pixels, whatever the number of tiles, so that an exported graph stays small.

        Raises:
            ValueError: If the tile is larger than the image.
        """
        if use_random_tiling:
            msg = "EdgeAlignedTiler tiles on a grid; random tiling is anomalib's Tiler's"
            raise ValueError(msg)
        if image.dim() == 3:  # noqa: PLR2004
            image = image.unsqueeze(0)
        self.batch_size, self.num_channels, self.input_h, self.input_w = image.shape
        if self.input_h < self.tile_size_h or self.input_w < self.tile_size_w:
            msg = f"Tile size {self.tile_size_h, self.tile_size_w} exceeds image size {self.input_h, self.input_w}"
            raise ValueError(msg)
        self.rows, self.cols = tile_starts(self.input_h, self.tile_size_h), tile_starts(self.input_w, self.tile_size_w)
        self.num_patches_h, self.num_patches_w = len(self.rows), len(self.cols)
        self.pixel_index = self._pixel_index(image.device)  # kept for untile, as anomalib's Tiler keeps its sizes
        pixels = image.flatten(2).index_select(2, self.pixel_index)
        tiles = pixels.view(self.batch_size, self.num_channels, -1, self.tile_size_h, self.tile_size_w)
        return tiles.transpose(1, 2).reshape(-1, self.num_channels, self.tile_size_h, self.tile_size_w)

    def untile(self, tiles: torch.Tensor) -> torch.Tensor:
        """The image (or map) of the last :meth:`tile`'s size stitched from ``tiles`` (any channel count), the
        overlaps averaged."""
        channels, index = tiles.shape[1], self.pixel_index.to(tiles.device)
        values = tiles.reshape(self.batch_size, -1, channels, self.tile_size_h * self.tile_size_w).transpose(1, 2)
        image = tiles.new_zeros(self.batch_size, channels, self.input_h * self.input_w)
        image = image.index_add(2, index, values.reshape(self.batch_size, channels, -1))
        count = torch.zeros(self.input_h * self.input_w, device=tiles.device).index_add(
            0, index, torch.ones(len(index), device=tiles.device)
        )
        return (image / count).view(self.batch_size, channels, self.input_h, self.input_w)

    def _pixel_index(self, device: torch.device) -> torch.Tensor:
        """The flat index (row * width + column) of every tile's pixels, tile by tile, row by row."""
        rows = torch.tensor(self.rows, device=device)[:, None] + torch.arange(self.tile_size_h, device=device)
        cols = torch.tensor(self.cols, device=device)[:, None] + torch.arange(self.tile_size_w, device=device)
        flat = rows[:, None, :, None] * self.input_w + cols[None, :, None, :]  # (rows, cols, tile_h, tile_w)
        return flat.flatten()
