"""Regions to repaint: cells and rectangles into masks, uploaded masks checked, --region parsed."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.commands.grammar import parse_imagine
from core.commands.regions import Region, cells_mask, check_mask, mask_coverage, parse_region, region_mask
from core.errors import InvalidRequest
from core.settings import LimitsSettings


def pixels(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


def test_cells_become_white_thirds_of_the_image() -> None:
    mask = pixels(cells_mask(0b100000001, 90, 60))  # top-left and bottom-right
    assert mask.mode == "L" and mask.size == (90, 60)
    assert mask.getpixel((0, 0)) == 255 and mask.getpixel((29, 19)) == 255
    assert mask.getpixel((30, 19)) == 0 and mask.getpixel((29, 20)) == 0
    assert mask.getpixel((60, 40)) == 255 and mask.getpixel((89, 59)) == 255
    assert mask.getpixel((45, 30)) == 0
    assert mask_coverage(cells_mask(0b000000111, 90, 60)) == pytest.approx(1 / 3)


@pytest.mark.parametrize(("cells", "words"), [(0, "at least one square"), (0b111111111, "All nine")])
def test_no_cells_or_all_cells_are_refused(cells: int, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        cells_mask(cells, 64, 64)


def test_a_region_in_percent_covers_its_rectangle() -> None:
    region = parse_region("0, 0, 50, 100")
    assert region == Region(0, 0, 50, 100)
    mask = pixels(region_mask(region, 101, 40))
    assert mask.getpixel((50, 39)) == 255 and mask.getpixel((51, 0)) == 0  # 50.5 px rounds outwards
    assert mask_coverage(region_mask(parse_region("25,25,75,75"), 100, 100)) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0,0,50", "four numbers"),
        ("a,b,c,d", "four numbers"),
        ("0,0,150,100", "from 0 to 100"),
        ("50,0,50,100", "covers something"),
        ("60,0,40,100", "covers something"),
        ("0,0,100,100", "covers the whole image"),
    ],
)
def test_bad_regions_say_what_to_write(value: str, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as refused:
        parse_region(value)
    assert refused.value.field == "region"


def test_the_region_flag_is_read_by_the_grammar_with_or_without_spaces() -> None:
    limits = LimitsSettings()
    options = parse_imagine(
        "a red door --region 10, 20, 30, 40 at night", default_model="tiny", limits=limits
    )
    assert options.region == Region(10, 20, 30, 40)
    assert options.prompt == "a red door at night"
    with pytest.raises(InvalidRequest, match="--region takes four numbers"):
        parse_imagine("a red door --region left", default_model="tiny", limits=limits)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_an_uploaded_mask_is_normalised_to_black_and_white() -> None:
    grey = Image.new("RGB", (40, 30), (0, 0, 0))
    grey.paste((200, 200, 200), (0, 0, 20, 30))
    mask = pixels(check_mask(png(grey), 40, 30))
    assert mask.mode == "L" and set(mask.histogram()[1:255]) == {0}
    assert mask_coverage(png(mask)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (png(Image.new("L", (40, 30), 0)), "covers nothing"),
        (png(Image.new("L", (40, 30), 255)), "covers the whole image"),
        (png(Image.new("LA", (40, 30), (255, 0))), "covers nothing"),  # an empty transparent layer
        (png(Image.new("L", (30, 40), 128)), "The mask is 30×40 but the image is 40×30"),
        (b"not a png", "couldn't read that mask"),
    ],
)
def test_bad_masks_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        check_mask(data, 40, 30)


def test_transparent_pixels_are_kept_whatever_their_colour() -> None:
    layer = Image.new("RGBA", (40, 30), (255, 255, 255, 0))  # white, but transparent: keep
    layer.paste((255, 255, 255, 255), (0, 0, 6, 6))
    mask = pixels(check_mask(png(layer), 40, 30))
    assert mask.getpixel((2, 2)) == 255 and mask.getpixel((20, 20)) == 0
