"""Moderation verdicts, shared by the checks in moderation/ and the code that acts on them.

"The check failed" is a verdict of its own, never "allowed": callers decide by policy (fail closed or open).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"
    CHECK_FAILED = "check_failed"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    categories: tuple[str, ...] = ()
    reason_code: str = ""
    message: str = ""  # user-facing explanation when refused or failed
    normalized: str = ""  # the text as the check saw it, for the audit log
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    @classmethod
    def allow(cls, normalized: str = "") -> Verdict:
        return cls(Outcome.ALLOWED, normalized=normalized)


class PromptModerator(Protocol):
    """Checks prompt text before any quota is spent or anything is queued."""

    async def check_prompt(self, prompt: str, negative_prompt: str, community_id: str | None) -> Verdict: ...


class ImageModerator(Protocol):
    """Checks one generated image (PNG/JPEG bytes) before it is stored publicly."""

    async def check_image(self, image: bytes) -> Verdict: ...


class AllowAll:
    """Used where moderation is switched off on purpose (the offline demo's random-noise model)."""

    async def check_prompt(self, prompt: str, negative_prompt: str, community_id: str | None) -> Verdict:
        return Verdict.allow(prompt)

    async def check_image(self, image: bytes) -> Verdict:
        return Verdict.allow()
