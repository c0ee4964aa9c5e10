"""The generation request: what every front end builds and every worker reads.

It crosses process boundaries as JSON (stored in Redis under the request id), so it is a frozen pydantic
model that forbids unknown fields. It is platform-neutral: who asked is a `Requester`, and where to reply
is an opaque `reply_to` mapping that only the asking front end interprets.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.models.policy import NsfwPolicy
from core.models.privileges import Privilege


class Mode(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    VARIATION = "variation"
    UPSCALE = (
        "upscale"  # the old path: a resize plus a light img2img pass (used when no upscaler is configured)
    )
    REROLL = "reroll"
    INPAINT = "inpaint"  # source_image + mask_image: repaint the mask's white pixels, keep the rest exactly
    OUTPAINT = "outpaint"  # source_image + canvas: zoom out or pan, keep the source's pixels exactly
    UPSCALE_SUBTLE = "upscale_subtle"  # super-resolution only, by upscale_factor
    UPSCALE_CREATIVE = "upscale_creative"  # super-resolution, then a tiled detail pass at `strength`


SOURCE_MODES = frozenset(
    {
        Mode.IMG2IMG,
        Mode.VARIATION,
        Mode.UPSCALE,
        Mode.INPAINT,
        Mode.OUTPAINT,
        Mode.UPSCALE_SUBTLE,
        Mode.UPSCALE_CREATIVE,
    }
)


class Platform(StrEnum):
    CLI = "cli"
    TELEGRAM = "telegram"
    DISCORD = "discord"
    WEB = "web"  # the browser front end (bots/web): the embedded local user


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Canvas(Frozen):
    """How an outpaint grows the picture: zoom out by `zoom` (1.1–2.0) around the middle, or pan one way by
    `pan_fraction` of the side. Exactly one of the two."""

    zoom: float = Field(default=1.0, ge=1.0, le=2.0)
    pan: Literal["left", "right", "up", "down"] | None = None
    pan_fraction: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_of(self) -> Canvas:
        zooms, pans = self.zoom > 1.0, self.pan is not None
        if zooms == pans:
            raise ValueError("a canvas either zooms out (zoom > 1) or pans (pan and pan_fraction > 0)")
        if pans and self.pan_fraction <= 0:
            raise ValueError("a pan needs a pan_fraction above 0")
        return self


class LoraRef(Frozen):
    """One LoRA adapter from the operator's catalog, by name, with its weight."""

    name: str = Field(min_length=1, max_length=64)
    weight: float = Field(default=1.0, ge=-2.0, le=2.0)


class ControlRef(Frozen):
    """A ControlNet condition: the kind, the user's image (a storage key, before preprocessing), its weight."""

    kind: Literal["canny", "depth", "pose", "scribble"]
    image: str = Field(min_length=1)
    weight: float = Field(default=1.0, ge=0.0, le=2.0)


class Requester(Frozen):
    platform: Platform
    user_id: str
    chat_id: str
    community_id: str | None = None  # Discord guild or Telegram group; None in DMs and the CLI
    display_name: str | None = None
    age_restricted: bool = False  # an NSFW-marked channel, where community policy may allow more
    privilege: Privilege = Privilege.USER  # computed once by the front end (core.models.privileges)
    roles: tuple[str, ...] = ()  # platform role ids/names, for tiers assigned by role


class GenerationRequest(Frozen):
    request_id: str
    prompt: str = Field(min_length=1)
    negative_prompt: str = ""
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    steps: int = Field(gt=0)
    guidance: float = Field(ge=0)
    seeds: tuple[int, ...] = Field(min_length=1, max_length=4)  # one explicit seed per image
    seed_explicit: bool = False  # the user typed --seed, so the result is cacheable
    model: str
    mode: Mode = Mode.TXT2IMG
    source_image: str | None = None  # storage key of the input image (every mode in SOURCE_MODES)
    mask_image: str | None = None  # storage key of an inpaint mask: white = repaint, black = keep
    canvas: Canvas | None = None  # outpaint only
    upscale_factor: Literal[2, 4] | None = None  # upscale_subtle / upscale_creative only
    loras: tuple[LoraRef, ...] = Field(default=(), max_length=3)
    control: ControlRef | None = None
    sampler: str | None = (
        None  # a name from the sampler table (e.g. "dpm++ 2m karras"); None: the model's own
    )
    style: str | None = None  # the --style preset applied to prompt/negative_prompt, kept to show it back
    strength: float | None = Field(default=None, gt=0, le=1)
    parent_id: str | None = None  # the request a variation, upscale or reroll came from
    parent_index: int | None = Field(default=None, ge=0, le=3)
    prefer_cloud: bool = False  # the user asked for the OpenAI backend
    requester: Requester
    reply_to: dict[str, str] = Field(default_factory=dict)
    image_policy: NsfwPolicy | None = (
        None  # the community's NSFW policy at submit time; None: the bot's setting
    )
    notes: tuple[str, ...] = ()  # what the grammar changed and said (a snapped size…), shown with the result
    created_at: float = Field(default_factory=time.time)

    @model_validator(mode="after")
    def _check_mode(self) -> GenerationRequest:
        needs_source = self.mode in SOURCE_MODES
        if needs_source and not self.source_image:
            raise ValueError(f"mode {self.mode} needs a source_image")
        if needs_source and self.mode is not Mode.UPSCALE_SUBTLE and self.strength is None:
            raise ValueError(f"mode {self.mode} needs a strength")
        if self.mode is Mode.TXT2IMG and self.source_image:
            raise ValueError("txt2img takes no source_image")
        if (self.mode is Mode.INPAINT) != (self.mask_image is not None):
            raise ValueError("a mask_image goes with inpaint, and inpaint needs one")
        if (self.mode is Mode.OUTPAINT) != (self.canvas is not None):
            raise ValueError("a canvas goes with outpaint, and outpaint needs one")
        upscales = self.mode in (Mode.UPSCALE_SUBTLE, Mode.UPSCALE_CREATIVE)
        if upscales != (self.upscale_factor is not None):
            raise ValueError("an upscale_factor goes with upscale_subtle/creative, and they need one")
        if len({lora.name for lora in self.loras}) != len(self.loras):
            raise ValueError("each LoRA may be named once")
        return self

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def denoising_steps(self) -> int:
        """The sampler steps that run: starting from an image skips the noisiest (1 - strength) of them, but
        at least one runs (the worker stretches the schedule for that)."""
        if self.source_image is None or self.strength is None:
            return self.steps
        return max(1, int(self.steps * self.strength))

    @property
    def cost(self) -> float:
        """The work asked of a GPU, in megapixel-steps: width × height × steps that run × images / 10⁶."""
        return self.width * self.height * self.denoising_steps * self.n / 1_000_000

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> GenerationRequest:
        return cls.model_validate_json(data)
