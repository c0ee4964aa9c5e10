"""The sizes of edits: what an outpaint's canvas is, what an upscale makes, and what is refused before any charge."""

from __future__ import annotations

import pytest

from core.commands.canvas import inpaint_size, outpaint_placement, render_size, upscale_size
from core.errors import InvalidRequest
from core.models.catalog import get_model
from core.models.request import Canvas

SD15 = get_model("sd15")
SDXL = get_model("sdxl")


def test_a_zoom_out_keeps_the_native_area_with_the_source_scaled_into_the_middle() -> None:
    placement = outpaint_placement(SD15, 512, 512, Canvas(zoom=2.0))
    assert placement.size == (512, 512)
    assert placement.box == (128, 128, 384, 384)

    wide = outpaint_placement(SDXL, 1344, 768, Canvas(zoom=1.5))
    left, top, right, bottom = wide.box
    assert (left + right) / 2 == pytest.approx(wide.width / 2, abs=1)
    assert (top + bottom) / 2 == pytest.approx(wide.height / 2, abs=1)
    assert (right - left) / (bottom - top) == pytest.approx(1344 / 768, rel=0.01)
    assert wide.width * wide.height == pytest.approx(SDXL.native_area, rel=0.1)


def test_a_zoom_below_one_point_one_is_refused_with_the_range() -> None:
    with pytest.raises(InvalidRequest) as refused:
        outpaint_placement(SD15, 512, 512, Canvas(zoom=1.05))
    assert "1.1 to 2" in refused.value.message


@pytest.mark.parametrize(
    ("way", "size", "box"),
    [
        ("right", (768, 512), (0, 0, 512, 512)),
        ("left", (768, 512), (256, 0, 768, 512)),
        ("down", (512, 768), (0, 0, 512, 512)),
        ("up", (512, 768), (0, 256, 512, 768)),
    ],
)
def test_a_pan_grows_one_side_by_its_fraction_and_keeps_the_source_at_its_own_scale(
    way: str, size: tuple[int, int], box: tuple[int, int, int, int]
) -> None:
    placement = outpaint_placement(SD15, 512, 512, Canvas(pan=way, pan_fraction=0.5))  # type: ignore[arg-type]
    assert placement.size == size
    assert placement.box == box


def test_a_pan_rounds_the_grown_side_up_to_the_models_multiple() -> None:
    placement = outpaint_placement(SD15, 512, 512, Canvas(pan="right", pan_fraction=0.3))
    assert placement.size == (672, 512)  # 665.6 → 672


def test_a_pan_beyond_the_models_maximum_side_is_refused_with_the_fraction_that_fits() -> None:
    with pytest.raises(InvalidRequest) as refused:
        outpaint_placement(SD15, 768, 512, Canvas(pan="left", pan_fraction=0.5))
    assert refused.value.field == "pan"
    assert "1024" in refused.value.message and "at most 33%" in refused.value.message

    with pytest.raises(InvalidRequest) as full:
        outpaint_placement(SD15, 1024, 512, Canvas(pan="right", pan_fraction=0.25))
    assert "any further" in full.value.message


def test_render_size_keeps_a_fitting_canvas_and_refits_a_large_one() -> None:
    assert render_size(SD15, 768, 512) == (768, 512)
    assert render_size(SD15, 2048, 2048) == (512, 512)
    width, height = render_size(SD15, 1000, 1000)  # within the sides but near 4× the native area
    assert (width, height) == (512, 512)
    assert render_size(SD15, 100, 100) == (256, 256)  # up to the model's smallest side
    assert inpaint_size(640, 480) == (640, 480)


def test_upscale_size_is_exactly_the_factor_and_bounded_by_the_upscaler_limits() -> None:
    assert upscale_size(512, 768, 4, 4096, 4096 * 4096) == (2048, 3072)
    with pytest.raises(InvalidRequest) as refused:
        upscale_size(1024, 1536, 4, 4096, 4096 * 4096)
    assert "Try 2× instead" in refused.value.message and "4096" in refused.value.message
