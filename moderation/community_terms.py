"""Per-community extra blocked terms, kept in Redis: one set per community, normalised terms as members.

Admin commands call `add`, `remove` and `list`; the prompt check calls `blocklist`, which reads the set on every
call (one SMEMBERS, so every bot process sees a change at once) and reuses the compiled matcher while the set
is unchanged.
"""

from __future__ import annotations

import builtins
import logging
from collections import OrderedDict
from typing import Final

import redis.asyncio as aioredis

from core.errors import InvalidRequest
from core.keys import BLOCKLIST_KEY
from moderation.blocklist import Blocklist, Term
from moderation.normalize import normalize

log = logging.getLogger(__name__)

# Wire name; belongs in core.constants next to the other key prefixes.
COMMUNITY_CATEGORY: Final = "community"
MIN_TERM_CHARS: Final = 2
MAX_TERM_CHARS: Final = 64
MAX_TERM_WORDS: Final = 6
MAX_TERMS: Final = 500
MAX_COMMUNITY_ID_CHARS: Final = 100
CACHED_COMMUNITIES: Final = 1024


# Check the cap and add in one step, so concurrent admins cannot pass MAX_TERMS.
_ADD_SCRIPT: Final = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
"""
_FULL: Final = -1


def normalize_term(term: str) -> str:
    """The stored form of a term, or InvalidRequest(field="term") saying what to change."""
    if len(term) > MAX_TERM_CHARS * 4:
        raise InvalidRequest("term", f"That term is too long: keep it under {MAX_TERM_CHARS} characters.")
    normalized = normalize(term)
    if not normalized:
        raise InvalidRequest("term", "That term has no letters or digits: please give a word or a phrase.")
    if len(normalized) < MIN_TERM_CHARS:
        raise InvalidRequest(
            "term", f"That term is too short: give at least {MIN_TERM_CHARS} letters, or a whole phrase."
        )
    if len(normalized) > MAX_TERM_CHARS:
        raise InvalidRequest("term", f"That term is too long: keep it under {MAX_TERM_CHARS} characters.")
    if normalized.count(" ") >= MAX_TERM_WORDS:
        raise InvalidRequest("term", f"That phrase is too long: use at most {MAX_TERM_WORDS} words.")
    return normalized


def _key(community_id: str) -> str:
    if (
        not community_id
        or len(community_id) > MAX_COMMUNITY_ID_CHARS
        or any(c.isspace() for c in community_id)
    ):
        raise InvalidRequest("community_id", "This command only works inside a server or group.")
    return BLOCKLIST_KEY.format(community_id=community_id)


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member


class CommunityBlocklist:
    """Extra blocked terms per community (Discord guild, Telegram group)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._add_script = redis.register_script(_ADD_SCRIPT)
        self._compiled: OrderedDict[str, tuple[frozenset[str], Blocklist]] = OrderedDict()

    async def add(self, community_id: str, term: str) -> str:
        """Block `term` in the community; returns the normalised form stored (adding it twice is harmless)."""
        key = _key(community_id)
        normalized = normalize_term(term)
        added = await self._add_script(keys=[key], args=[normalized, MAX_TERMS])
        if int(added) == _FULL:
            raise InvalidRequest(
                "term", f"This community already blocks {MAX_TERMS} terms: remove some before adding more."
            )
        log.info("community %s blocked a term (%d chars)", community_id, len(normalized))
        return normalized

    async def remove(self, community_id: str, term: str) -> bool:
        """Unblock `term`; False when it was not blocked."""
        removed = await self._redis.srem(_key(community_id), normalize_term(term))  # type: ignore[misc]
        if removed:
            log.info("community %s unblocked a term", community_id)
        return bool(removed)

    async def list(self, community_id: str) -> builtins.list[str]:
        """The community's blocked terms (normalised), sorted."""
        members = await self._redis.smembers(_key(community_id))  # type: ignore[misc]
        return sorted(_text(member) for member in members)

    async def blocklist(self, community_id: str) -> Blocklist | None:
        """The community's terms as a Blocklist (category "community"), or None when it has none."""
        terms = frozenset(await self.list(community_id))
        if not terms:
            self._compiled.pop(community_id, None)
            return None
        cached = self._compiled.get(community_id)
        if cached is not None and cached[0] == terms:
            self._compiled.move_to_end(community_id)
            return cached[1]
        compiled = Blocklist(Term(term, COMMUNITY_CATEGORY) for term in terms)
        self._compiled[community_id] = (terms, compiled)
        self._compiled.move_to_end(community_id)
        while len(self._compiled) > CACHED_COMMUNITIES:
            self._compiled.popitem(last=False)
        return compiled
