"""The audit trail: every admin action and every refusal, durable in a Redis stream, readable with filters."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

from core import constants as c

AUDIT_STREAM = f"{c.KEY_PREFIX}:audit"
AUDIT_MAXLEN = 1_000_000


@dataclass(frozen=True)
class AuditEntry:
    actor: str  # "platform:user_id" of who acted, or "system"
    action: str  # "ban", "unban", "tier", "quota", "cancel", "pause", "prompt_refused", "quota_refused", …
    target: str = ""  # the user, request or term acted on
    reason: str = ""
    community: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.at))
        text = f"{when} {self.actor} {self.action}"
        if self.target:
            text += f" {self.target}"
        if self.reason:
            text += f" — {self.reason}"
        return text


class AuditLog:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def record(self, entry: AuditEntry) -> str:
        entry_id = await self.redis.xadd(
            AUDIT_STREAM, {"entry": json.dumps(asdict(entry))}, maxlen=AUDIT_MAXLEN, approximate=True
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
        for _, fields in raw:
            entry = AuditEntry(**json.loads(fields[b"entry"]))
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
