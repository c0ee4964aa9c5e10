"""Building requests: from a parsed /imagine, and from a finished parent (variation, upscale, reroll).

Pure functions over the models: the service decides who may ask and queues what these return.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from core.commands.grammar import ImagineOptions
from core.commands.uploads import fit_aspect
from core.errors import InvalidRequest
from core.models.catalog import get_model
from core.models.ids import new_request_id
from core.models.policy import NsfwPolicy
from core.models.request import Canvas, ControlRef, GenerationRequest, Mode, Requester
from core.models.result import ResultEvent, StoredImage

SEED_LIMIT = 2**32
IMG2IMG_STRENGTH = 0.6
VARY_STRONG = 0.65
VARY_SUBTLE = 0.35
UPSCALE_STRENGTH = 0.3


def random_seeds(n: int) -> tuple[int, ...]:
    return tuple(secrets.randbelow(SEED_LIMIT) for _ in range(n))


def scoped_request_id(requester: Requester, source_id: str | None) -> str:
    """A request id derived from the platform event (so a redelivery is queued once), or a fresh one."""
    return new_request_id(f"{requester.platform}:{source_id}" if source_id else None)


@dataclass(frozen=True)
class Source:
    """Where an /imagine starts: nothing (text to image), or an uploaded image stored under `key`."""

    mode: Mode = Mode.TXT2IMG
    key: str | None = None
    strength: float | None = None
    mask: str | None = None  # inpaint (--region): the mask's storage key


def request_from_options(
    options: ImagineOptions,
    request_id: str,
    requester: Requester,
    reply_to: dict[str, str],
    source: Source,
    width: int,
    height: int,
    control: ControlRef | None = None,
) -> GenerationRequest:
    seeds = (
        tuple((options.seed + i) % SEED_LIMIT for i in range(options.n))
        if options.seed is not None
        else random_seeds(options.n)
    )
    return GenerationRequest(
        request_id=request_id,
        prompt=options.prompt,
        negative_prompt=options.negative_prompt,
        width=width,
        height=height,
        steps=options.steps,
        guidance=options.guidance,
        seeds=seeds,
        seed_explicit=options.seed is not None,
        model=options.model,
        mode=source.mode,
        source_image=source.key,
        mask_image=source.mask,
        strength=source.strength,
        prefer_cloud=options.prefer_cloud,
        loras=options.loras,
        sampler=options.sampler,
        control=control,
        requester=requester,
        reply_to=reply_to,
    )


@dataclass(frozen=True)
class Derivation:
    """What a child request changes from its parent (None: the parent's own, or nothing)."""

    mode: Mode
    index: int
    source: str
    strength: float | None
    seeds: tuple[int, ...]
    width: int
    height: int
    model: str
    mask: str | None = None  # inpaint: the mask's storage key
    canvas: Canvas | None = None  # outpaint
    factor: int | None = None  # upscale_subtle / upscale_creative
    steps: int | None = None
    seed_explicit: bool = False  # deterministic, so cacheable
    prompt: str | None = None  # a remixed prompt
    negative_prompt: str | None = None


def child_request(
    parent: GenerationRequest,
    requester: Requester,
    request_id: str,
    reply_to: dict[str, str],
    derivation: Derivation,
    image_policy: NsfwPolicy | None,
) -> GenerationRequest:
    """A variation, edit or upscale of image `derivation.index` of `parent`, asked for by `requester`."""
    model = derivation.model
    spec = get_model(model)
    negative = parent.negative_prompt if derivation.negative_prompt is None else derivation.negative_prompt
    steps = parent.steps if model == parent.model else spec.default_steps
    return GenerationRequest(
        request_id=request_id,
        prompt=derivation.prompt or parent.prompt,
        negative_prompt=negative if spec.supports_negative else "",
        width=derivation.width,
        height=derivation.height,
        steps=derivation.steps or steps,
        guidance=parent.guidance if model == parent.model else spec.default_guidance,
        seeds=derivation.seeds,
        seed_explicit=derivation.seed_explicit,
        model=model,
        mode=derivation.mode,
        source_image=derivation.source,
        mask_image=derivation.mask,
        canvas=derivation.canvas,
        upscale_factor=derivation.factor,
        strength=derivation.strength,
        parent_id=parent.request_id,
        parent_index=derivation.index,
        # the same look: a variation keeps the parent's LoRAs and sampler (not its control image: it starts
        # from one of the parent's pictures instead)
        loras=parent.loras if model == parent.model else (),
        sampler=parent.sampler if model == parent.model else None,
        requester=requester,
        reply_to=reply_to,
        image_policy=image_policy,  # where it will be shown, now
    )


def reroll_request(
    parent: GenerationRequest,
    requester: Requester,
    request_id: str,
    reply_to: dict[str, str],
    image_policy: NsfwPolicy | None,
    remix: tuple[str, str] | None = None,
) -> GenerationRequest:
    """🔄: the parent's parameters with new seeds (and, remixed, a new prompt and negative prompt)."""
    prompts = {} if remix is None else {"prompt": remix[0], "negative_prompt": remix[1]}
    request = parent.model_copy(
        update={
            **prompts,
            "request_id": request_id,
            "seeds": random_seeds(parent.n),
            "seed_explicit": False,
            "mode": Mode.REROLL if parent.mode is Mode.TXT2IMG else parent.mode,
            "parent_id": parent.request_id,
            "requester": requester,
            "reply_to": reply_to,
            "image_policy": image_policy,
            "created_at": time.time(),
        }
    )
    return GenerationRequest.model_validate(request.model_dump())


def fitting_size(model: str, width: int, height: int) -> tuple[int, int]:
    """The image's own size when `model` can render it, else its aspect ratio at the model's native area
    (an OpenAI result of 1792×1024 varied by a local model, say)."""
    spec = get_model(model)
    fits = spec.min_side <= min(width, height) and max(width, height) <= spec.max_side
    if fits and width % spec.size_multiple == 0 and height % spec.size_multiple == 0:
        return width, height
    return fit_aspect(model, width, height)


def pick_image(result: ResultEvent, index: int) -> StoredImage:
    """Image `index` of the grid as first shown (by its own index, so a deleted neighbour shifts nothing)."""
    for image in result.images:
        if image.index == index:
            return image
    raise InvalidRequest("button", f"Image {index + 1} of that grid isn't available (any more).")


def pick_source(parent: GenerationRequest, result: ResultEvent, index: int) -> StoredImage:
    """The image an edit starts from; one the image check withheld (or a moderator removed) can't be edited."""
    try:
        return pick_image(result, index)
    except InvalidRequest:
        if index < parent.n:
            raise InvalidRequest(
                "image",
                f"Image {index + 1} was withheld by the safety check (or removed), so it can't be edited: "
                "pick another image, or change the prompt and try again.",
            ) from None
        raise
