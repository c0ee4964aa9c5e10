"""The audit trail: every admin action and every refusal, durable in a Redis stream, readable with filters."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from redis.asyncio import Redis

from core.keys import AUDIT_MAXLEN, AUDIT_STREAM
from core.models.audit import AuditAction, AuditEntry

__all__ = ["AuditAction", "AuditEntry", "AuditLog"]

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def record(self, entry: AuditEntry) -> str:
        entry_id = await self.redis.xadd(
            AUDIT_STREAM, {"entry": entry.model_dump_json()}, maxlen=AUDIT_MAXLEN, approximate=True
        )
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
        """Newest first; `user` matches the actor or the target. Scans at most `scan` recent entries."""
        start = f"{int(since * 1000)}-0" if since else "-"
        raw = await self.redis.xrevrange(AUDIT_STREAM, max="+", min=start, count=scan)
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
            if community and entry.community != community:
                continue
            entries.append(entry)
            if len(entries) >= limit:
                break
        return entries
