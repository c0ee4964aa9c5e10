"""The prompt check: default terms, then the community's terms, then the remote (OpenAI) check.

What is checked where:

- the prompt: every refusing category of the default list, the minor-safety rule, the community's terms, and
  the remote check;
- the negative prompt lists what the picture must avoid, so "nude, gore, child" there is normal and safe. It is
  checked only for what is harmful to store or show whatever the intent (slurs, the community's terms), and
  for one bypass: a minor in the prompt with clothing in the negative prompt is refused as "sexual_minors".

`allow_categories` (per instance, or per call for an age-restricted channel) lets a community allow categories
such as "sexual"; "sexual_minors" can never be allowed, and asking for it is a ConfigError. Community terms
are never relaxed by it. A remote CHECK_FAILED (or a remote that raises, or a Redis error while reading
community terms) refuses with reason "moderation_unavailable" when `fail_closed`, and is allowed with a
WARNING otherwise. Messages never repeat the offending words.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import Final

from redis.exceptions import RedisError

from core.errors import ConfigError
from core.models.verdict import Outcome, PromptModerator, Verdict
from moderation.blocklist import Blocklist, Match
from moderation.community_terms import COMMUNITY_CATEGORY, CommunityBlocklist
from moderation.default_terms import (
    CLOTHING,
    HATE,
    MINOR,
    NEVER_ALLOWED,
    SEXUAL_MINORS,
    SEXUALISING_CATEGORIES,
    SIGNAL_CATEGORIES,
    mentions_minor_age,
)
from moderation.normalize import readings

log = logging.getLogger(__name__)

REASON_BLOCKED_TERM: Final = "blocked_term"
REASON_MINOR_SAFETY: Final = "minor_safety"
REASON_COMMUNITY_TERM: Final = "community_term"
REASON_REMOTE: Final = "openai_moderation"
REASON_UNAVAILABLE: Final = "moderation_unavailable"

# Categories of the default list that are checked in the negative prompt too.
NEGATIVE_CHECKED: Final = frozenset({HATE})

_FRIENDLY: Final = {
    "sexual": "sexual content",
    "sexual_minors": "sexual content involving minors",
    "sexual_violence": "sexual violence",
    "violence_graphic": "graphic violence",
    "violence": "violence",
    "hate": "hateful slurs",
    "harassment": "harassment",
    "self_harm": "self-harm",
    "illicit": "illegal activity",
}

MINOR_SAFETY_MESSAGE: Final = (
    "Sorry, I can't make this image: it puts children or young people together with sexual or suggestive "
    "content, which is never allowed here. Please remove that from your prompt."
)
COMMUNITY_MESSAGE: Final = (
    "Sorry, your prompt uses a word or phrase this community has blocked. "
    "Please rephrase it and try again (a moderator can show you the list)."
)
UNAVAILABLE_MESSAGE: Final = (
    "Sorry, the safety check for prompts is unavailable right now, so I didn't start this image. "
    "Please try again in a few minutes."
)


def remote_category(name: str) -> str:
    """OpenAI's category names in ours: "sexual/minors" → "sexual_minors", "self-harm/intent" → "self_harm"."""
    name = name.replace("-", "_")
    if name in ("sexual/minors", "violence/graphic"):
        return name.replace("/", "_")
    return name.split("/", 1)[0]


def _check_allowed(categories: Iterable[str]) -> frozenset[str]:
    allowed = frozenset(categories)
    forbidden = allowed & NEVER_ALLOWED
    if forbidden:
        raise ConfigError(f"moderation: {', '.join(sorted(forbidden))} can never be allowed")
    return allowed


def _describe(categories: Iterable[str]) -> str:
    return ", ".join(_FRIENDLY.get(category, category.replace("_", " ")) for category in categories)


class PromptCheck:
    """core.models.verdict.PromptModerator over a default Blocklist, a CommunityBlocklist and a remote check."""

    def __init__(
        self,
        default: Blocklist,
        community: CommunityBlocklist | None = None,
        remote: PromptModerator | None = None,
        fail_closed: bool = True,
        allow_categories: Collection[str] = (),
    ) -> None:
        self._default = default
        self._community = community
        self._remote = remote
        self._fail_closed = fail_closed
        self._allow = _check_allowed(allow_categories)

    async def check_prompt(
        self,
        prompt: str,
        negative_prompt: str,
        community_id: str | None,
        *,
        allow_categories: Collection[str] | None = None,
    ) -> Verdict:
        allowed = self._allow if allow_categories is None else _check_allowed(allow_categories)
        prompt_n = readings(prompt)
        negative_n = readings(negative_prompt)
        audit = prompt_n[0] + (f" | negative: {negative_n[0]}" if negative_n[0] else "")
        log.debug("checking prompt %r (negative %r)", prompt_n[0], negative_n[0])

        verdict = self._check_default(prompt, prompt_n, negative_n, allowed, audit)
        if verdict is None and self._community is not None and community_id:
            verdict = await self._check_community(community_id, prompt_n, negative_n, audit)
        if verdict is None and self._remote is not None:
            verdict = await self._check_remote(prompt, negative_prompt, community_id, allowed, audit)
        if verdict is None:
            return Verdict.allow(audit)
        if verdict.outcome is Outcome.REFUSED:
            log.info("prompt refused: %s (%s)", verdict.reason_code, ", ".join(verdict.categories))
        return verdict

    def _check_default(
        self,
        prompt: str,
        prompt_n: tuple[str, ...],
        negative_n: tuple[str, ...],
        allowed: frozenset[str],
        audit: str,
    ) -> Verdict | None:
        in_prompt = self._default.match_normalized(*prompt_n)
        in_negative = self._default.match_normalized(*negative_n)
        prompt_categories = {hit.category for hit in in_prompt}
        negative_categories = {hit.category for hit in in_negative}

        minor = MINOR in prompt_categories or mentions_minor_age(prompt)
        if (
            SEXUAL_MINORS in prompt_categories
            or (minor and prompt_categories & SEXUALISING_CATEGORIES)
            or (minor and CLOTHING in negative_categories)
        ):
            return Verdict(
                Outcome.REFUSED,
                categories=(SEXUAL_MINORS,),
                reason_code=REASON_MINOR_SAFETY,
                message=MINOR_SAFETY_MESSAGE,
                normalized=audit,
            )

        refused = _refusing(in_prompt) - allowed
        refused_negative = _refusing(hit for hit in in_negative if hit.category in NEGATIVE_CHECKED)
        if not refused and not refused_negative:
            return None
        categories = tuple(sorted(refused | refused_negative))
        where = "your prompt" if refused else "your negative prompt"
        if refused and refused_negative:
            where = "your prompt and negative prompt"
        return Verdict(
            Outcome.REFUSED,
            categories=categories,
            reason_code=REASON_BLOCKED_TERM,
            message=(
                f"Sorry, {where} contains words this bot doesn't allow ({_describe(categories)}). "
                "Please rephrase without them and try again."
            ),
            normalized=audit,
        )

    async def _check_community(
        self, community_id: str, prompt_n: tuple[str, ...], negative_n: tuple[str, ...], audit: str
    ) -> Verdict | None:
        assert self._community is not None
        try:
            blocklist = await self._community.blocklist(community_id)
        except RedisError as exc:
            return self._unavailable(f"community terms unreadable ({type(exc).__name__})", audit)
        if blocklist is None:
            return None
        if blocklist.match_normalized(*prompt_n, *negative_n):
            return Verdict(
                Outcome.REFUSED,
                categories=(COMMUNITY_CATEGORY,),
                reason_code=REASON_COMMUNITY_TERM,
                message=COMMUNITY_MESSAGE,
                normalized=audit,
            )
        return None

    async def _check_remote(
        self,
        prompt: str,
        negative_prompt: str,
        community_id: str | None,
        allowed: frozenset[str],
        audit: str,
    ) -> Verdict | None:
        assert self._remote is not None
        try:
            remote = await self._remote.check_prompt(prompt, negative_prompt, community_id)
        except Exception:
            log.exception("remote prompt check raised")
            return self._unavailable("remote check raised", audit)
        if remote.outcome is Outcome.CHECK_FAILED:
            return self._unavailable(f"remote check failed ({remote.reason_code or 'no reason'})", audit)
        if remote.outcome is Outcome.ALLOWED:
            return None
        ours = tuple(dict.fromkeys(remote_category(name) for name in remote.categories))
        if ours and set(ours) <= allowed:
            log.info("remote check flagged only allowed categories: %s", ", ".join(ours))
            return None
        shown = _describe(category for category in ours if category not in allowed)
        return Verdict(
            Outcome.REFUSED,
            categories=ours,
            reason_code=REASON_REMOTE,
            message=(
                f"Sorry, the safety check flagged your prompt{f' ({shown})' if shown else ''}. "
                "Please rephrase it and try again."
            ),
            normalized=audit,
            scores=dict(remote.scores),
        )

    def _unavailable(self, why: str, audit: str) -> Verdict | None:
        if not self._fail_closed:
            log.warning("prompt moderation incomplete, allowing (fail open): %s", why)
            return None
        log.warning("prompt moderation incomplete, refusing (fail closed): %s", why)
        return Verdict(
            Outcome.REFUSED,
            reason_code=REASON_UNAVAILABLE,
            message=UNAVAILABLE_MESSAGE,
            normalized=audit,
        )

    async def close(self) -> None:
        close = getattr(self._remote, "close", None)
        if close is not None:
            await close()


def _refusing(hits: Iterable[Match]) -> set[str]:
    return {hit.category for hit in hits if hit.category not in SIGNAL_CATEGORIES}
