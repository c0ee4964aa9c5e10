"""Overlapping tiles over a large image, and how their outputs are put back together.

Two ways to join neighbouring tiles, one per kind of model:

- `crop` (super-resolution): each output pixel comes from the one tile it lies deepest inside — the cut between two
  tiles runs down the middle of their overlap, so each tile loses `overlap // 2` pixels at every inner edge. A
  convolutional model whose receptive field reaches less than that sees the same neighbourhood tiled or not, so
  the tiled output equals the untiled one up to float rounding.
- `feather` (the img2img detail pass, whose tiles are each re-imagined and never agree exactly): across an
  overlap, one tile's weight falls linearly as the next one's rises, so no seam shows.

Pure numpy: the tile plan is a function of the sizes alone, so the same image is always cut the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Join = Literal["crop", "feather"]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Span:
    """One tile along one axis: it reads [start, end) and owns [own_start, own_end) of the output (crop join);
    `fade_in` / `fade_out` are its overlaps with the previous / next tile (feather join)."""

    start: int
    end: int
    own_start: int
    own_end: int
    fade_in: int
    fade_out: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Tile:
    x: Span
    y: Span

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the pixels this tile reads."""
        return self.x.start, self.y.start, self.x.end, self.y.end


def spans(length: int, tile: int, overlap: int) -> list[Span]:
    """Tiles of `tile` pixels covering [0, length), neighbours sharing at least `overlap` pixels; the last tile
    ends at the edge. One span when the whole length fits in a tile."""
    if tile <= 0 or overlap < 0 or overlap * 2 > tile:
        raise ValueError(f"a tile of {tile} px can't overlap its neighbours by {overlap} px")
    if length <= tile:
        return [Span(0, length, 0, length, 0, 0)]
    stride = tile - overlap
    count = math.ceil((length - overlap) / stride)
    starts = [min(index * stride, length - tile) for index in range(count)]
    ends = [start + tile for start in starts]
    # The cut between two neighbours runs down the middle of what they share.
    cuts = [0] + [(starts[i + 1] + ends[i]) // 2 for i in range(count - 1)] + [length]
    return [
        Span(
            starts[i],
            ends[i],
            cuts[i],
            cuts[i + 1],
            ends[i - 1] - starts[i] if i > 0 else 0,
            ends[i] - starts[i + 1] if i < count - 1 else 0,
        )
        for i in range(count)
    ]


def plan(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Every tile of a width × height image, row by row."""
    return [Tile(x, y) for y in spans(height, tile, overlap) for x in spans(width, tile, overlap)]


def _weights_1d(span: Span, join: Join, scale: int) -> FloatArray:
    """The weight of each output pixel of `span` (scaled by `scale`) along one axis."""
    size = span.length * scale
    if join == "crop":
        weights = np.zeros(size, dtype=np.float32)
        weights[(span.own_start - span.start) * scale : (span.own_end - span.start) * scale] = 1.0
        return weights
    position = np.arange(size, dtype=np.float32) + 0.5
    weights = np.ones(size, dtype=np.float32)
    if span.fade_in:
        weights = np.minimum(weights, position / (span.fade_in * scale))
    if span.fade_out:
        weights = np.minimum(weights, (size - position) / (span.fade_out * scale))
    return weights


class Mosaic:
    """Accumulates tile outputs (H × W × C float arrays) into one image of `scale` × the tiled size."""

    def __init__(self, width: int, height: int, channels: int, join: Join, scale: int = 1) -> None:
        self.join = join
        self.scale = scale
        self._sum = np.zeros((height * scale, width * scale, channels), dtype=np.float32)
        self._weight = np.zeros((height * scale, width * scale, 1), dtype=np.float32)

    def add(self, tile: Tile, output: FloatArray) -> None:
        expected = (tile.y.length * self.scale, tile.x.length * self.scale)
        if output.shape[:2] != expected:
            raise ValueError(f"a tile's output is {output.shape[:2]}, expected {expected}")
        weights = np.outer(
            _weights_1d(tile.y, self.join, self.scale), _weights_1d(tile.x, self.join, self.scale)
        )[..., None]
        top, left = tile.y.start * self.scale, tile.x.start * self.scale
        region = (slice(top, top + expected[0]), slice(left, left + expected[1]))
        self._sum[region] += output * weights
        self._weight[region] += weights

    def result(self) -> FloatArray:
        if not np.all(self._weight > 0):
            raise ValueError("some pixels are covered by no tile")
        return self._sum / self._weight
