"""The audit trail: every admin action and every refusal, durable in Redis streams, readable with filters.

Each entry goes to the global stream (the owners' view, read from a private chat) and, when it happened in a
community, to that community's own stream, which its moderators read. So a flood of refusals elsewhere never
pushes a community's history out of reach of `/admin audit`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydantic import ValidationError
from redis.asyncio import Redis

from core.governance.admin_reply import Part, UserRef
from core.keys import AUDIT_MAXLEN, AUDIT_STREAM, COMMUNITY_AUDIT_MAXLEN, COMMUNITY_AUDIT_STREAM
from core.models.audit import AuditAction, AuditEntry

__all__ = ["AuditAction", "AuditEntry", "AuditLog", "entry_parts"]

log = logging.getLogger(__name__)

REWRITE_PAGE = 1000
# KEYS: the stream, its rewritten copy. ARGV: the last entry id copied. Entries added since are copied as they
# are, then the copy takes the stream's place, in one step.
_FINISH_REWRITE = """
local tail = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
for _, entry in ipairs(tail) do redis.call('XADD', KEYS[2], entry[1], unpack(entry[2])) end
redis.call('RENAME', KEYS[2], KEYS[1])
return #tail
"""


def entry_parts(entry: AuditEntry) -> list[Part]:
    """The entry as one line, with the users in it as values a front end shows its own way."""
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.at))
    actor: Part = entry.actor if entry.actor == "system" else UserRef.parse(entry.actor, entry.actor_name)
    parts: list[Part] = [f"{when} ", actor, f" {entry.action}"]
    if entry.target:
        parts += [" ", UserRef.parse(entry.target, entry.target_name) if entry.targets_user else entry.target]
    if entry.reason:
        parts.append(f" — {entry.reason}")
    return parts


def _changed(
    fields: dict[bytes, bytes], change: Callable[[AuditEntry], AuditEntry | None]
) -> dict[bytes, bytes] | None:
    try:
        entry = AuditEntry.model_validate_json(fields[b"entry"])
    except (KeyError, ValidationError):
        return None
    new = change(entry)
    return None if new is None else {**fields, b"entry": new.model_dump_json().encode()}


class AuditLog:
    def __init__(self, redis: Redis, keep_s: int | None = None) -> None:
        """`keep_s`: entries older than this are trimmed as new ones come (settings.retention.audit_days)."""
        self.redis = redis
        self.keep_s = keep_s

    async def record(self, entry: AuditEntry) -> str:
        fields = {"entry": entry.model_dump_json()}
        oldest = f"{int((time.time() - self.keep_s) * 1000)}-0" if self.keep_s else None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(AUDIT_STREAM, fields, maxlen=AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            if oldest:
                pipe.xtrim(AUDIT_STREAM, minid=oldest, approximate=False)
            if entry.community:
                stream = COMMUNITY_AUDIT_STREAM.format(community=entry.community)
                pipe.xadd(stream, fields, maxlen=COMMUNITY_AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]
                if oldest:
                    pipe.xtrim(stream, minid=oldest, approximate=False)
            entry_id, *_ = await pipe.execute()
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def rewrite(self, stream: str, change: Callable[[AuditEntry], AuditEntry | None]) -> int:
        """Rewrite the entries `change` changes (it returns None for an entry it leaves alone), keeping every
        entry's id, so its time and order stay. Returns how many changed (0: the stream is left untouched).

        Streams are append-only, so the stream is copied page by page into a new one (changed entries changed)
        which then replaces it atomically, with whatever was appended meanwhile. O(entries): for rare operations
        such as /forget."""
        copy = f"{stream}:rewrite:{time.time_ns()}"
        changed, last = 0, None
        try:
            while True:
                start = "-" if last is None else f"({last}"
                page = await self.redis.xrange(stream, min=start, max="+", count=REWRITE_PAGE)
                if not page:
                    break
                async with self.redis.pipeline(transaction=False) as pipe:
                    for entry_id, fields in page:
                        new = _changed(fields, change)
                        changed += new is not None
                        pipe.xadd(copy, new or fields, id=entry_id)  # type: ignore[arg-type]
                    await pipe.execute()
                last = page[-1][0].decode()
            if not changed or last is None:
                return 0
            await self.redis.eval(_FINISH_REWRITE, 2, stream, copy, last)  # type: ignore[misc]
            return changed
        finally:
            await self.redis.delete(copy)  # gone already when it replaced the stream

    async def read(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        community: str | None = None,
        since: float | None = None,
        limit: int = 20,
        scan: int = 5000,
        skip: frozenset[str] = frozenset(),
    ) -> list[AuditEntry]:
        """Newest first, from the community's stream (None: the global one); `user` matches the actor or the
        target; entries whose action is in `skip` are left out. Scans at most `scan` recent entries."""
        stream = COMMUNITY_AUDIT_STREAM.format(community=community) if community else AUDIT_STREAM
        start = f"{int(since * 1000)}-0" if since else "-"
        raw = await self.redis.xrevrange(stream, max="+", min=start, count=scan)
        entries = []
        for entry_id, fields in raw:
            try:
                entry = AuditEntry.model_validate_json(fields[b"entry"])
            except (KeyError, ValidationError):
                log.warning("audit entry %s is unreadable; skipped", entry_id)
                continue
            if user and user not in (entry.actor, entry.target):
                continue
            if (action and entry.action != action) or entry.action in skip:
                continue
            entries.append(entry)
            if len(entries) >= limit:
                break
        return entries
