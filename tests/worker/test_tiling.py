"""The tile plan covers every pixel once (crop) or with weights that sum to one (feather), whatever the sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from worker.tiling import Mosaic, plan, spans


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(96, 32, 8), (100, 48, 16), (48, 48, 16), (20, 64, 8)]
)
def test_spans_cover_the_length_and_their_owned_parts_partition_it(
    length: int, tile: int, overlap: int
) -> None:
    found = spans(length, tile, overlap)
    assert found[0].start == 0 and found[-1].end == length
    assert all(span.length == min(tile, length) for span in found)
    assert all(b.start < a.end and a.end - b.start >= overlap for a, b in itertools.pairwise(found))
    owned = [index for span in found for index in range(span.own_start, span.own_end)]
    assert owned == list(range(length))
    # every cut leaves at least half the overlap between it and the edge of either tile
    for span in found:
        if span.own_start > 0:
            assert span.own_start - span.start >= overlap // 2
        if span.own_end < length:
            assert span.end - span.own_end >= overlap // 2


def test_a_tile_cannot_overlap_more_than_half_of_itself() -> None:
    with pytest.raises(ValueError, match="overlap"):
        spans(100, 32, 20)


@pytest.mark.parametrize("join", ["crop", "feather"])
@pytest.mark.parametrize("scale", [1, 3])
def test_tiles_put_back_together_rebuild_the_image(join: str, scale: int) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((70, 110, 3)).astype(np.float32)
    big = image.repeat(scale, axis=0).repeat(scale, axis=1)
    mosaic = Mosaic(110, 70, 3, join, scale)  # type: ignore[arg-type]
    tiles = plan(110, 70, 32, 12)
    assert len(tiles) == 5 * 3
    for tile in tiles:
        left, top, right, bottom = tile.box
        mosaic.add(tile, big[top * scale : bottom * scale, left * scale : right * scale])
    np.testing.assert_allclose(mosaic.result(), big, atol=1e-6)
