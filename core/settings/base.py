"""The settings' own vocabulary: the variable prefix, the ecosystem's variables, and the base of every group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
)

ModelT = TypeVar("ModelT", bound=BaseModel)

ENV_PREFIX = "IMAGEBOT_"
# Settings fields that the ecosystem's own variables also fill (first one set wins), below the IMAGEBOT_ ones.
ECOSYSTEM_VARIABLES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("openai", "api_key"): ("OPENAI_API_KEY",),
    ("openai", "base_url"): ("OPENAI_BASE_URL",),
    ("storage", "s3_endpoint_url"): ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
}
# S3 bucket naming rules (3-63 chars, lowercase letters, digits, dots and hyphens, alphanumeric at both ends).


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def updated(model: ModelT, changes: Mapping[str, Any]) -> ModelT:
    """`model` (Settings or a group) with `changes`, checked as start-up checks them: an unknown name (every group
    forbids extra fields) or a bad value raises pydantic's ValidationError. A group given as a mapping changes only
    the fields it names, nested groups likewise; any other value replaces the field's whole.

    Not `model_copy(update=…)`, which checks nothing: a misspelt or stale name becomes an attribute nobody reads.
    """
    values = {name: getattr(model, name) for name in type(model).model_fields}
    for name, change in changes.items():
        current = values.get(name)
        if isinstance(current, BaseModel) and isinstance(change, Mapping):
            change = updated(current, change)  # noqa: PLW2901
        values[name] = change
    return type(model).model_validate(values)
