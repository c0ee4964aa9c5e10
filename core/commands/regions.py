"""Regions to repaint: 3×3 cells picked in chat, a `--region x0,y0,x1,y1` rectangle in percent, or a mask
PNG drawn in the web editor — each becomes a mask image (mode "L", white = repaint, black = keep) the size of
the source, checked to cover something and not everything.

Pure functions over bytes and numbers; the service stores the mask (as an image key) with the request.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageDraw, UnidentifiedImageError

from core.errors import InvalidRequest

GRID = 3  # the chat picker's cells per side
ALL_CELLS = (1 << GRID * GRID) - 1
MASK_MAX_BYTES = 8 * 1024 * 1024
_NUMBER = r"\s*([0-9]{1,3}(?:\.[0-9]{1,3})?)\s*"
_REGION = re.compile(rf"{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}")
REGION_EXAMPLE = "--region 0,0,50,100"


@dataclass(frozen=True)
class Region:
    """A rectangle in percent of the image's width and height: left, top, right, bottom (0–100)."""

    x0: float
    y0: float
    x1: float
    y1: float


def parse_region(value: str, label: str = "--region") -> Region:
    """`x0,y0,x1,y1` in percent (left, top, right, bottom); InvalidRequest("region") says what to write."""
    match = _REGION.fullmatch(value)
    if match is None:
        raise InvalidRequest(
            "region",
            f"{label} takes four numbers in percent, left,top,right,bottom — for example {REGION_EXAMPLE} "
            f"for the left half (you wrote {value.strip()[:40] or 'nothing'}).",
        )
    x0, y0, x1, y1 = (float(group) for group in match.groups())
    if max(x0, y0, x1, y1) > 100:
        raise InvalidRequest("region", f"{label} values are percentages from 0 to 100 (you wrote {value}).")
    if x1 <= x0 or y1 <= y0:
        raise InvalidRequest(
            "region",
            f"{label} must go left,top,right,bottom with right above left and bottom above top, "
            f"so it covers something (you wrote {value}); for example {REGION_EXAMPLE}.",
        )
    if (x0, y0, x1, y1) == (0, 0, 100, 100):
        raise InvalidRequest(
            "region",
            f"{label} {value} covers the whole image; to redraw all of it, leave out --region "
            "(and set --strength), or pick a smaller region.",
        )
    return Region(x0, y0, x1, y1)


def _png(mask: Image.Image) -> bytes:
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def check_cells(cells: int) -> None:
    if cells <= 0:
        raise InvalidRequest(
            "region", "No part of the image is selected: tap at least one square to repaint."
        )
    if cells >= ALL_CELLS:
        raise InvalidRequest(
            "region",
            "All nine squares are selected, which repaints the whole image: leave some out, "
            "or use Vary (Strong) to redraw all of it.",
        )


def cells_mask(cells: int, width: int, height: int) -> bytes:
    """A PNG mask `width`×`height` with the chosen cells white (bit i: row i // 3, column i % 3)."""
    check_cells(cells)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for cell in range(GRID * GRID):
        if cells >> cell & 1:
            row, col = divmod(cell, GRID)
            box = (
                col * width // GRID,
                row * height // GRID,
                (col + 1) * width // GRID - 1,
                (row + 1) * height // GRID - 1,
            )
            draw.rectangle(box, fill=255)
    return _png(mask)


def region_mask(region: Region, width: int, height: int) -> bytes:
    """A PNG mask `width`×`height` with the rectangle white (rounded outwards to whole pixels)."""
    left, top = int(region.x0 * width / 100), int(region.y0 * height / 100)
    right = min(width, -int(-region.x1 * width // 100))
    bottom = min(height, -int(-region.y1 * height // 100))
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle((left, top, right - 1, bottom - 1), fill=255)
    data = _png(mask)
    check_mask(data, width, height)
    return data


def check_mask(data: bytes, width: int, height: int) -> bytes:
    """An uploaded mask, checked and normalised: the source's size, white (≥ 128) repaints, black keeps; it
    must repaint something and keep something. Returns the normalised mask PNG (mode "L", 0 or 255)."""
    if len(data) > MASK_MAX_BYTES:
        raise InvalidRequest("mask", f"That mask is {len(data) / 1e6:.1f} MB; please send a PNG under 8 MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                size = image.size
                if size != (width, height):
                    raise InvalidRequest(
                        "mask",
                        f"The mask is {size[0]}×{size[1]} but the image is {width}×{height}; "
                        "please draw the mask on the image itself, at its size.",
                    )
                mask = _as_coverage(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidRequest("mask", "I couldn't read that mask; please send a PNG image.") from None
    low, high = _extrema(mask)
    if high == 0:
        raise InvalidRequest("mask", "The mask covers nothing: paint over the part of the image to repaint.")
    if low == 255:
        raise InvalidRequest(
            "mask",
            "The mask covers the whole image: leave some of it unpainted, or use Vary (Strong) to redraw all of it.",
        )
    return _png(mask)


def _extrema(band: Image.Image) -> tuple[int, int]:
    """The lowest and highest value of a one-band image."""
    low, high = band.getextrema()
    assert isinstance(low, int | float) and isinstance(high, int | float)
    return int(low), int(high)


def _as_coverage(image: Image.Image) -> Image.Image:
    """White (or opaque paint on a transparent layer) → 255, the rest → 0."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
        if _extrema(alpha)[0] < 255:
            return alpha.point(lambda value: 255 if value >= 128 else 0)
        image = rgba
    return image.convert("L").point(lambda value: 255 if value >= 128 else 0)


def mask_coverage(data: bytes) -> float:
    """The share of the mask's pixels that repaint (0–1)."""
    with Image.open(io.BytesIO(data)) as image:
        histogram = image.convert("L").histogram()
    total = sum(histogram)
    return sum(histogram[128:]) / total if total else 0.0
