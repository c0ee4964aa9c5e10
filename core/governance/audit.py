"""The audit trail: every admin action and every refusal, durable in Redis streams, readable with filters.

Each entry goes to the global stream (the owners' view, read from a private chat) and, when it happened in a
community, to that community's own stream, which its moderators read. So a flood of refusals elsewhere never
pushes a community's history out of reach of `/admin audit`.
"""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError
from redis.asyncio import Redis

from core.governance.admin_reply import Part, UserRef
from core.keys import AUDIT_MAXLEN, AUDIT_STREAM, COMMUNITY_AUDIT_MAXLEN, COMMUNITY_AUDIT_STREAM
from core.models.audit import AuditAction, AuditEntry

__all__ = ["AuditAction", "AuditEntry", "AuditLog", "entry_parts"]

log = logging.getLogger(__name__)


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

    async def read(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        community: str | None = None,
        since: float | None = None,
        limit: int = 20,
        scan: int = 5000,
    ) -> list[AuditEntry]:
        """Newest first, from the community's stream (None: the global one); `user` matches the actor or the
        target. Scans at most `scan` recent entries of that stream."""
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
            if action and entry.action != action:
                continue
            entries.append(entry)
            if len(entries) >= limit:
                break
        return entries
