"""A /describe request: an image to turn into prompt suggestions, stored as JSON under DESCRIBE_KEY.

Like a GenerationRequest it crosses process boundaries (the bot stores it, a worker's `describe` job reads it),
so it is a frozen pydantic model that forbids unknown fields. Its result is a DESCRIBED ResultEvent whose
`suggestions` the suggestion buttons (core.commands.buttons, ACTION_SUGGESTION) imagine.
"""

from __future__ import annotations

import time

from pydantic import Field

from core.models.request import Frozen, Requester

SUGGESTIONS = 4  # prompts per /describe, one button each


class DescribeRequest(Frozen):
    request_id: str
    image: str = Field(min_length=1)  # storage key of the image to describe (an upload, or a result's image)
    requester: Requester
    reply_to: dict[str, str] = Field(default_factory=dict)
    source_id: str | None = None  # the result it came from, when it was a result's button
    created_at: float = Field(default_factory=time.time)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> DescribeRequest:
        return cls.model_validate_json(data)
