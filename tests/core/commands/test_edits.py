"""Edits as child requests: the sizes and canvases the worker reads, the limits, custom zoom, remix text."""

from __future__ import annotations

import pytest

from core.commands.edits import (
    pan_edit,
    parse_zoom,
    region_edit,
    remix_prompt,
    upscale_edit,
    zoom_edit,
)
from core.errors import InvalidRequest
from core.models.request import Canvas, Mode
from core.models.result import StoredImage
from core.settings import LimitsSettings, UpscalerSettings


def image(width: int = 512, height: int = 512, seed: int | None = 9) -> StoredImage:
    return StoredImage(
        key="images/x.png", url="file:///x.png", width=width, height=height, seed=seed, index=1
    )


def test_zoom_keeps_the_native_area_and_pan_grows_one_side_by_half() -> None:
    zoom = zoom_edit("sd15", image(1024, 1024), 1, 2.0)
    assert (zoom.mode, zoom.canvas, zoom.width, zoom.height) == (Mode.OUTPAINT, Canvas(zoom=2.0), 512, 512)
    pan = pan_edit("sd15", image(512, 344), 1, "down")
    assert (pan.width, pan.height, pan.canvas) == (512, 520, Canvas(pan="down", pan_fraction=0.5))
    assert pan_edit("sd15", image(), 1, "right").width == 768


def test_a_pan_beyond_the_models_side_suggests_what_fits() -> None:
    with pytest.raises(InvalidRequest, match="zoom out instead") as refused:
        pan_edit("sd15", image(1024, 1024), 0, "up")
    assert "1024×1024" in refused.value.message and "1024 px a side sd15" in refused.value.message
    with pytest.raises(InvalidRequest, match="pan up or down instead"):
        pan_edit("sd15", image(1024, 512), 0, "left")


def test_upscales_are_factor_times_the_image_and_bounded_by_the_setting() -> None:
    subtle = upscale_edit("sd15", image(), 1, False, UpscalerSettings())
    assert (subtle.mode, subtle.width, subtle.factor, subtle.strength) == (Mode.UPSCALE_SUBTLE, 1024, 2, None)
    assert subtle.seed_explicit and subtle.steps == 1  # deterministic: cached; one pass of work
    creative = upscale_edit("sd15", image(), 1, True, UpscalerSettings())
    assert (creative.mode, creative.seeds, creative.seed_explicit) == (Mode.UPSCALE_CREATIVE, (9,), True)
    with pytest.raises(InvalidRequest, match="upscale limit of 1000 px a side") as refused:
        upscale_edit("sd15", image(), 1, False, UpscalerSettings(max_output_side=1000))
    assert refused.value.message.endswith("It is as large as it can get here.")


def test_region_edits_repaint_at_the_images_size() -> None:
    edit = region_edit("sd15", image(512, 768), 1, "inputs/mask.png")
    assert (edit.mode, edit.mask, edit.width, edit.height, edit.index) == (
        Mode.INPAINT,
        "inputs/mask.png",
        512,
        768,
        1,
    )


@pytest.mark.parametrize(("text", "factor"), [("1.3", 1.3), ("1,5", 1.5), ("2x", 2.0), (" 1.1 ", 1.1)])
def test_custom_zoom_factors(text: str, factor: float) -> None:
    assert parse_zoom(text) == factor


@pytest.mark.parametrize("text", ["1", "2.5", "zoom", "", "nan", "inf"])
def test_custom_zoom_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"from 1\.1 to 2"):
        parse_zoom(text)


def test_a_remix_changes_the_prompt_and_may_change_no() -> None:
    limits = LimitsSettings()
    assert remix_prompt("a stormy sea", limits) == ("a stormy sea", None)
    assert remix_prompt("a stormy sea --no boats,  gulls", limits) == ("a stormy sea", "boats, gulls")
    with pytest.raises(InvalidRequest, match="--ar can't"):
        remix_prompt("a stormy sea --ar 16:9", limits)
    with pytest.raises(InvalidRequest):
        remix_prompt("   ", limits)
