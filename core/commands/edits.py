"""Edits of a finished image: Vary (Region), Zoom Out, Pan and Upscale (Subtle / Creative) as child requests.

A request's width × height is its output, sized by core/commands/canvas.py, the functions the worker checks
the same request with (so the chat side refuses before charging what the worker would refuse):
- inpaint: the source's own size, with `mask_image` (the source's size, white = repaint);
- outpaint, zoom: `canvas.zoom`; the source's aspect ratio at the model's native area;
- outpaint, pan: `canvas.pan` and `pan_fraction`; the source's size grown by the fraction along the pan,
  refused beyond the model's maximum side;
- upscale_subtle / upscale_creative: `upscale_factor` × the source, refused beyond the upscaler settings'
  limits. Subtle is deterministic (one fixed seed, cacheable); Creative reuses the image's seed.

Pure functions: the service checks who may edit, stores the mask and queues what these return.
"""

from __future__ import annotations

import math

from core.commands.canvas import inpaint_size, outpaint_placement, upscale_size
from core.commands.derivation import Derivation, random_seeds
from core.commands.flags import shown
from core.commands.grammar import split_flags
from core.commands.text import check_characters, check_prompt_text
from core.errors import InvalidRequest
from core.models.catalog import get_model
from core.models.request import Canvas, Mode
from core.models.result import StoredImage
from core.settings import LimitsSettings, UpscalerSettings

INPAINT_STRENGTH = 0.9
OUTPAINT_STRENGTH = 1.0
CREATIVE_STRENGTH = 0.35
PAN_FRACTION = 0.5  # a pan grows the image by half its side, as Midjourney's does
ZOOM_MIN, ZOOM_MAX = 1.1, 2.0
UPSCALE_FACTOR = 2
SUBTLE_SEED = 0  # super-resolution draws nothing at random: one fixed seed makes it cacheable


def region_edit(model: str, image: StoredImage, index: int, mask_key: str) -> Derivation:
    width, height = inpaint_size(image.width, image.height)
    return Derivation(
        Mode.INPAINT, index, image.key, INPAINT_STRENGTH, random_seeds(1), width, height, model, mask=mask_key
    )


def parse_zoom(text: str) -> float:
    """A custom zoom factor as typed ("1.3", "1,3", "1.3x"); InvalidRequest("zoom") says what to send."""
    cleaned = text.strip().lower().rstrip("x×").strip().replace(",", ".")
    try:
        factor = float(cleaned)
    except ValueError:
        factor = math.nan
    if not math.isfinite(factor) or not ZOOM_MIN <= round(factor, 2) <= ZOOM_MAX:
        raise InvalidRequest(
            "zoom",
            f"The zoom factor must be a number from {ZOOM_MIN:g} to {ZOOM_MAX:g}, like 1.3 "
            f"(you wrote {shown(text) or 'nothing'}).",
        )
    return round(factor, 2)


def zoom_edit(model: str, image: StoredImage, index: int, factor: float) -> Derivation:
    canvas = Canvas(zoom=factor)
    width, height = outpaint_placement(get_model(model), image.width, image.height, canvas).size
    return Derivation(
        Mode.OUTPAINT,
        index,
        image.key,
        OUTPAINT_STRENGTH,
        random_seeds(1),
        width,
        height,
        model,
        canvas=canvas,
    )


def pan_edit(model: str, image: StoredImage, index: int, direction: str) -> Derivation:
    """`direction`: left, right, up or down. Refused when the grown side is beyond the model's maximum."""
    spec = get_model(model)
    canvas = Canvas(pan=direction, pan_fraction=PAN_FRACTION)
    try:
        width, height = outpaint_placement(spec, image.width, image.height, canvas).size
    except InvalidRequest:
        horizontal = direction in ("left", "right")
        other = Canvas(pan="up" if horizontal else "left", pan_fraction=PAN_FRACTION)
        try:
            outpaint_placement(spec, image.width, image.height, other)
            hint = f"pan {'up or down' if horizontal else 'left or right'} instead, or zoom out"
        except InvalidRequest:
            hint = "zoom out instead"
        raise InvalidRequest(
            "pan",
            f"Panning {direction} would make this {image.width}×{image.height} image larger than the "
            f"{spec.max_side} px a side {spec.name} can draw: {hint}.",
        ) from None
    return Derivation(
        Mode.OUTPAINT,
        index,
        image.key,
        OUTPAINT_STRENGTH,
        random_seeds(1),
        width,
        height,
        model,
        canvas=canvas,
    )


def upscale_edit(
    model: str, image: StoredImage, index: int, creative: bool, limits: UpscalerSettings
) -> Derivation:
    try:
        width, height = upscale_size(
            image.width, image.height, UPSCALE_FACTOR, limits.max_output_side, limits.max_output_pixels
        )
    except InvalidRequest as exc:
        raise InvalidRequest("upscale", f"{exc.message} It is as large as it can get here.") from None
    if creative:
        seed = image.seed if image.seed is not None else random_seeds(1)[0]
        mode, strength, steps = Mode.UPSCALE_CREATIVE, CREATIVE_STRENGTH, None
    else:
        seed, mode, strength, steps = SUBTLE_SEED, Mode.UPSCALE_SUBTLE, None, 1
    return Derivation(
        mode,
        index,
        image.key,
        strength,
        (seed,),
        width,
        height,
        model,
        factor=UPSCALE_FACTOR,
        steps=steps,
        seed_explicit=creative is False or image.seed is not None,
    )


def remix_prompt(text: str, limits: LimitsSettings) -> tuple[str, str | None]:
    """An edited prompt (Remix): the prompt, and the negative prompt when `--no` is given (None: keep the
    image's). Checked like a new command's text; other flags can't change in a remix."""
    check_characters(text)
    prompt, flags = split_flags(text)
    negative: str | None = None
    for name, value in flags:
        if name != "no":
            raise InvalidRequest(
                name,
                f"Only the prompt (and --no) can change in a remix; --{name} can't. "
                "Remove it, or start a new /imagine.",
            )
        negative = ", ".join(term.strip() for term in value.split(",") if term.strip())
        if len(negative) > limits.max_negative_chars:
            raise InvalidRequest(
                "no", f"--no is {len(negative)} characters long; the limit is {limits.max_negative_chars}."
            )
    check_prompt_text(prompt, limits)
    return prompt, negative
