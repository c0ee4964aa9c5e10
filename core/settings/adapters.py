"""The operator's adapter catalog: LoRAs and ControlNets per model family."""

from __future__ import annotations

import re
from typing import get_args

from pydantic import (
    Field,
    field_validator,
)

from core.models.catalog import Family
from core.models.request import ControlRef
from core.settings.base import Group

_ADAPTER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
CONTROL_KINDS: tuple[str, ...] = get_args(ControlRef.model_fields["kind"].annotation)


class LoraSettings(Group):
    """One LoRA adapter of the operator's catalog (its name, the key in `AdapterSettings.loras`, is what users type).

    `source` is a local .safetensors file, or a Hugging Face repo ("owner/name") with `weight_name` naming the
    file in it (none: diffusers picks the repo's one LoRA file).
    """

    source: str = Field(min_length=1)
    weight_name: str | None = None
    family: Family  # the base models it was trained for: sd15, sd2, sdxl, flux, tiny
    trigger: str = ""  # a word it was trained on, put in front of the prompt
    weight: float = Field(default=1.0, ge=-2.0, le=2.0)  # when --lora gives none
    description: str = ""


class ControlSettings(Group):
    """ControlNet models per base family and kind, and the annotators that make depth and pose maps.

    `models` maps a family to {kind: ControlNet folder or Hub repo}, e.g.
    {"sd15": {"canny": "lllyasviel/control_v11p_sd15_canny"}}. Canny and scribble maps are drawn with OpenCV;
    depth and pose need an annotator model (a transformers depth-estimation model, a VitPose model) and are
    refused without one.
    """

    models: dict[Family, dict[str, str]] = Field(default_factory=dict)
    depth_annotator: str | None = None  # e.g. "depth-anything/Depth-Anything-V2-Small-hf"
    pose_annotator: str | None = None  # e.g. "usyd-community/vitpose-base-simple"

    @field_validator("models")
    @classmethod
    def _kinds(cls, value: dict[Family, dict[str, str]]) -> dict[Family, dict[str, str]]:
        for family, kinds in value.items():
            unknown = sorted(set(kinds) - set(CONTROL_KINDS))
            if unknown:
                raise ValueError(
                    f"control models for {family.value} name unknown kinds {unknown}; known: {list(CONTROL_KINDS)}"
                )
        return value

    def annotator(self, kind: str) -> str | None:
        """The annotator model a kind needs (None for canny and scribble, drawn with OpenCV)."""
        return {"depth": self.depth_annotator, "pose": self.pose_annotator}.get(kind)

    def available(self, family: Family) -> list[str]:
        """The kinds a model of `family` can use here: a ControlNet, and an annotator where the kind needs one."""
        kinds = self.models.get(family, {})
        return [
            kind
            for kind in CONTROL_KINDS
            if kind in kinds and (kind in ("canny", "scribble") or self.annotator(kind))
        ]


class AdapterSettings(Group):
    """What shapes a model's output beyond the prompt: the LoRA catalog and the ControlNet models."""

    loras: dict[str, LoraSettings] = Field(default_factory=dict)
    max_loaded_loras: int = Field(default=8, ge=1, le=64)  # per worker model; the least recently used go
    control: ControlSettings = ControlSettings()

    @field_validator("loras")
    @classmethod
    def _names(cls, value: dict[str, LoraSettings]) -> dict[str, LoraSettings]:
        for name in value:
            if not _ADAPTER_NAME.fullmatch(name):
                raise ValueError(
                    f"LoRA name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-' (users type it)"
                )
        return value
