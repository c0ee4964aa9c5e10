"""The settings' own vocabulary: the variable prefix, the ecosystem's variables, and the base of every group."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import (
    BaseModel,
    ConfigDict,
)

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
