"""Image sizes from what users type: an aspect ratio (`--ar 16:9`) or an exact size (`--size 768x512`), per model.

`size_for_aspect` keeps a model's native pixel area and snaps the sides to the model's multiple; models with
fixed sizes (OpenAI's) get the nearest one. Whenever the size made differs from the one asked for, a note says
so; anything that can't be made is an InvalidRequest naming the flag ("ar" or "size"). Nothing is clamped silently.
"""

from __future__ import annotations

import math
import re

from core.commands.flags import shown
from core.errors import InvalidRequest
from core.models.catalog import ModelSpec, nearest_fixed_size

MAX_ASPECT = 4  # ratios from 1:4 to 4:1
RATIO_TOLERANCE = 0.01  # a size whose ratio is further than this from the one asked for gets a note
LARGE_MODEL_SIDE = 512  # models whose native side is at least this get sides in multiples of 64

_AR = re.compile(r"([0-9]{1,6}):([0-9]{1,6})")
_SIZE = re.compile(r"([0-9]{1,6})[xX×*]([0-9]{1,6})")


def _size_list(spec: ModelSpec) -> str:
    sizes = [f"{width}x{height}" for width, height in spec.fixed_sizes]
    return ", ".join(sizes[:-1]) + f" or {sizes[-1]}" if len(sizes) > 1 else sizes[0]


def _snap(value: float, multiple: int) -> int:
    """The nearest multiple (ties go down), never below one multiple."""
    return max(multiple, math.ceil(value / multiple - 0.5) * multiple)


def _ratio_error(label: str, value: str, why: str) -> InvalidRequest:
    return InvalidRequest("ar", f"{label} {why} (you wrote {shown(value)}).")


def aspect_size(spec: ModelSpec, aspect: str, label: str) -> tuple[int, int, str | None]:
    """size_for_aspect, naming the flag as the user wrote it (`label`, e.g. "--aspect") in its messages."""
    match = _AR.fullmatch("".join(aspect.split()))
    if match is None:
        raise _ratio_error(label, aspect, "must be two whole numbers with a colon, like 16:9")
    across, down = int(match[1]), int(match[2])
    if across == 0 or down == 0:
        raise _ratio_error(label, aspect, "needs two whole numbers above zero, like 16:9")
    asked = across / down
    if not 1 / MAX_ASPECT <= asked <= MAX_ASPECT:
        raise _ratio_error(label, aspect, f"must be between 1:{MAX_ASPECT} and {MAX_ASPECT}:1")
    if spec.fixed_sizes:
        width, height = nearest_fixed_size(spec, across, down)
        if abs(width / height / asked - 1) <= RATIO_TOLERANCE:
            return width, height, None
        note = (
            f"{spec.name} makes only {_size_list(spec)} images, "
            f"so {width}x{height} was used for {across}:{down}."
        )
        return width, height, note
    if min(spec.native_width, spec.native_height) >= LARGE_MODEL_SIDE:
        multiple = math.lcm(64, spec.size_multiple)
    else:
        multiple = spec.size_multiple
    lowest = math.ceil(spec.min_side / multiple) * multiple
    highest = max(lowest, spec.max_side // multiple * multiple)
    area = spec.native_area
    width = min(highest, max(lowest, _snap(math.sqrt(area * asked), multiple)))
    height = min(highest, max(lowest, _snap(math.sqrt(area / asked), multiple)))
    if abs(width / height / asked - 1) <= RATIO_TOLERANCE:
        return width, height, None
    note = (
        f"{across}:{down} became {width}x{height} for {spec.name} (about {width / height:.2f}:1, "
        f"as its sides are multiples of {multiple})."
    )
    return width, height, note


def size_for_aspect(spec: ModelSpec, aspect: str) -> tuple[int, int, str | None]:
    """Width, height and an optional note for an aspect ratio "W:H" on a model.

    Keeps the model's native pixel area; sides are multiples of 64 for models whose native side is at
    least 512, else of spec.size_multiple. OpenAI models get their nearest fixed size. The note says when
    the ratio made differs from the one asked for by more than 1%. Raises InvalidRequest("ar", ...).
    """
    return aspect_size(spec, aspect, "--ar")


def explicit_size(spec: ModelSpec, value: str, label: str) -> tuple[int, int, str | None]:
    """Width, height and an optional note for `--size WxH` (`value`, written as `label`) on a model."""
    match = _SIZE.fullmatch(value)
    if match is None:
        raise InvalidRequest(
            "size",
            f"{label} must be width x height in pixels, like 768x512 (you wrote {shown(value)}).",
        )
    width, height = int(match[1]), int(match[2])
    if width == 0 or height == 0:
        raise InvalidRequest(
            "size", f"{label} needs a width and a height above zero (you wrote {shown(value)})."
        )
    if spec.fixed_sizes:
        used = nearest_fixed_size(spec, width, height)
        if used == (width, height):
            return width, height, None
        note = (
            f"{spec.name} makes only {_size_list(spec)} images, "
            f"so {used[0]}x{used[1]} was used instead of {width}x{height}."
        )
        return used[0], used[1], note
    multiple = spec.size_multiple
    snapped_width = _snap(width, multiple)
    snapped_height = _snap(height, multiple)
    for side in (snapped_width, snapped_height):
        if not spec.min_side <= side <= spec.max_side:
            raise InvalidRequest(
                "size",
                f"{label} sides must be from {spec.min_side} to {spec.max_side} pixels for {spec.name} "
                f"(you wrote {width}x{height}).",
            )
    if (snapped_width, snapped_height) == (width, height):
        return width, height, None
    note = f"{width}x{height} was snapped to {snapped_width}x{snapped_height} (multiples of {multiple})."
    return snapped_width, snapped_height, note
