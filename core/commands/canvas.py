"""The sizes of edited pictures, shared by the chat side (to refuse before charging) and the worker (to render).

Pure functions over the catalog spec and the source image's size; each raises InvalidRequest with a message
that says what to change. A request's width × height is always the size of its OUTPUT:

- inpaint: the source's own size (`inpaint_size`);
- outpaint: the canvas of `outpaint_placement` — a zoom out keeps the source's aspect ratio at the model's native
  area with the source scaled into the middle; a pan keeps the source at its own scale and grows one side by
  `pan_fraction` of it (rounded up to the model's size multiple), and is refused beyond the model's maximum side;
- upscale_subtle / upscale_creative: the source × factor (`upscale_size`), bounded by the upscaler settings'
  maximum side and pixel count, not by the generation model's maximum.

A model renders an edit at `render_size`: the output size when the model can take it, else the same aspect ratio
re-fitted to the model's native area and sides; the worker resizes the render back to the output size and pastes
the kept source pixels in exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.commands.uploads import fit_aspect
from core.errors import InvalidRequest
from core.models.catalog import ModelSpec
from core.models.request import Canvas

MIN_ZOOM = 1.1
# A canvas up to this many times the model's native area renders at its own size (a panorama strip from a
# pan, say); beyond it, the render is re-fitted to the native area and resized back.
MAX_RENDER_AREA = 2.0


@dataclass(frozen=True)
class Placement:
    """An outpaint's canvas, and the box the source fills on it (in canvas pixels)."""

    width: int
    height: int
    left: int
    top: int
    source_width: int  # the source as placed: scaled for a zoom out, its own size for a pan
    source_height: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the kept source on the canvas, for PIL's crop and paste."""
        return self.left, self.top, self.left + self.source_width, self.top + self.source_height


def grid_multiple(spec: ModelSpec) -> int:
    """The multiple every rendered side must be (the VAE's 8, or a larger one the model asks for)."""
    return max(8, spec.size_multiple)


def _round_up(value: float, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)


def _snap(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def inpaint_size(source_width: int, source_height: int) -> tuple[int, int]:
    """An inpaint's output: exactly the source's size (the mask must be that size too)."""
    return source_width, source_height


def outpaint_placement(spec: ModelSpec, source_width: int, source_height: int, canvas: Canvas) -> Placement:
    """The canvas an outpaint of a source_width × source_height image makes on `spec`, and where the source goes.

    Zoom out: the model's native area at the source's aspect ratio (`fit_aspect`), the source scaled by
    1/zoom of that into the middle. Pan: the source at its own scale, the side it moves along grown by
    `pan_fraction` of itself and rounded up to the model's multiple; InvalidRequest when a side would pass the
    model's maximum (the message gives the largest fraction that fits).
    """
    if source_width <= 0 or source_height <= 0:
        raise InvalidRequest("image", "The source image has no pixels.")
    if canvas.pan is None:
        return _zoom(spec, source_width, source_height, canvas.zoom)
    return _pan(spec, source_width, source_height, canvas.pan, canvas.pan_fraction)


def _zoom(spec: ModelSpec, source_width: int, source_height: int, zoom: float) -> Placement:
    if zoom < MIN_ZOOM:
        raise InvalidRequest("zoom", f"Zoom out by {MIN_ZOOM:g} to 2; {zoom:g} is too little to show.")
    width, height = fit_aspect(spec.name, source_width, source_height)
    scale = min(width / zoom / source_width, height / zoom / source_height)
    inner_width = max(1, round(source_width * scale))
    inner_height = max(1, round(source_height * scale))
    return Placement(
        width, height, (width - inner_width) // 2, (height - inner_height) // 2, inner_width, inner_height
    )


def _pan(spec: ModelSpec, source_width: int, source_height: int, way: str, fraction: float) -> Placement:
    multiple = grid_multiple(spec)
    along_width = way in ("left", "right")
    side, across = (source_width, source_height) if along_width else (source_height, source_width)
    dimension = "wide" if along_width else "tall"
    if across > spec.max_side:
        other = "tall" if along_width else "wide"
        raise InvalidRequest(
            "pan",
            f"This image is {across} px {other}, more than {spec.name}'s maximum of {spec.max_side} px a side, "
            f"so it can't be panned {way}. Pan it with a model that takes larger images, or pan the other way.",
        )
    grown = _round_up(side * (1 + fraction), multiple)
    if grown <= side:
        grown = side + multiple
    if grown > spec.max_side:
        room = spec.max_side - side
        if room < multiple:
            raise InvalidRequest(
                "pan",
                f"This image is already {side} px {dimension}, {spec.name}'s maximum of {spec.max_side} px, "
                f"so it can't be panned {way} any further. Try zooming out instead.",
            )
        most = math.floor(room / side * 100)
        raise InvalidRequest(
            "pan",
            f"Panning {way} by {fraction:.0%} would make this image {grown} px {dimension}, more than "
            f"{spec.name}'s maximum of {spec.max_side} px. Pan by at most {most}%.",
        )
    extra = grown - side
    if along_width:
        return Placement(grown, source_height, extra if way == "left" else 0, 0, source_width, source_height)
    return Placement(source_width, grown, 0, extra if way == "up" else 0, source_width, source_height)


def render_size(spec: ModelSpec, width: int, height: int) -> tuple[int, int]:
    """The size `spec` renders a width × height edit at.

    The output size itself when both sides lie within the model's limits and the area is at most
    MAX_RENDER_AREA × its native area (sides snapped to the model's multiple); otherwise the same aspect ratio
    scaled to the native area (and into the side limits). The worker resizes the render back to width × height.
    """
    multiple = grid_multiple(spec)
    scale = 1.0
    if width * height > MAX_RENDER_AREA * spec.native_area:
        scale = math.sqrt(spec.native_area / (width * height))
    scale = min(scale, spec.max_side / max(width, height))
    scale = max(scale, spec.min_side / min(width, height))
    lowest = _round_up(spec.min_side, multiple)
    highest = max(lowest, spec.max_side // multiple * multiple)
    return (
        min(highest, max(lowest, _snap(width * scale, multiple))),
        min(highest, max(lowest, _snap(height * scale, multiple))),
    )


def upscale_size(width: int, height: int, factor: int, max_side: int, max_pixels: int) -> tuple[int, int]:
    """The output of upscaling a width × height image by `factor`: exactly factor× each side, or InvalidRequest
    when it would pass the bot's upscale limits (UpscalerSettings.max_output_side / max_output_pixels)."""
    if factor not in (2, 4):
        raise InvalidRequest("upscale", f"Upscale by 2 or 4; {factor} isn't offered.")
    out_width, out_height = width * factor, height * factor
    if max(out_width, out_height) > max_side or out_width * out_height > max_pixels:
        smaller = (
            " Try 2× instead." if factor == 4 and _fits(width * 2, height * 2, max_side, max_pixels) else ""
        )
        raise InvalidRequest(
            "upscale",
            f"Upscaling this {width}×{height} image {factor}× would make it {out_width}×{out_height}, beyond this "
            f"bot's upscale limit of {max_side} px a side and {max_pixels:,} pixels.{smaller}",
        )
    return out_width, out_height


def _fits(width: int, height: int, max_side: int, max_pixels: int) -> bool:
    return max(width, height) <= max_side and width * height <= max_pixels
