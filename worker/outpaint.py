"""Outpainting: Zoom Out and Pan, as an inpaint of a grown canvas whose mask is everything but the source.

The canvas and the source's box come from `outpaint_placement` (core/commands/canvas.py), the same function the
chat side calls to refuse a pan beyond the model's maximum side before charging. A zoom out scales the source
(Lanczos) into the middle of the model's native area; a pan keeps it at its own scale against one edge. The
border starts as the source's edge pixels stretched outwards (numpy's "edge" padding), which gives the
model the colours to continue; the inpaint repaints it, and the source's box is pasted back exactly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.commands.canvas import Placement


def place(source: Image.Image, placement: Placement) -> tuple[Image.Image, Image.Image]:
    """(canvas, repaint mask): the source in its box with its edges stretched over the border; the mask is white
    over the border, black over the box."""
    inner = (placement.source_width, placement.source_height)
    placed = source.convert("RGB")
    if placed.size != inner:
        placed = placed.resize(inner, Image.Resampling.LANCZOS)
    left, top, right, bottom = placement.box
    pixels = np.pad(
        np.asarray(placed),
        ((top, placement.height - bottom), (left, placement.width - right), (0, 0)),
        mode="edge",
    )
    canvas = Image.fromarray(pixels, "RGB")
    mask = Image.new("L", placement.size, 255)
    mask.paste(0, placement.box)
    return canvas, mask
