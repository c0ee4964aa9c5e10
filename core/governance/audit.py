"""The audit trail: every admin action and every refusal, durable in Redis streams, readable with filters.

Each entry goes to the global stream (the owners' view, read from a private chat) and, when it happened in a
community, to that community's own stream, which its moderators read. So a flood of refusals elsewhere never
pushes a community's history out of reach of `/admin audit`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

from core import constants as c
from core.governance.admin_reply import Part, UserRef

AUDIT_STREAM = f"{c.KEY_PREFIX}:audit"
COMMUNITY_AUDIT_STREAM = f"{c.KEY_PREFIX}:audit:community:{{community}}"
AUDIT_MAXLEN = 1_000_000
COMMUNITY_AUDIT_MAXLEN = 100_000
# Actions whose target is a user ("platform:id"); the others name a request, a term or a community.
USER_TARGETS = frozenset(
    {"ban", "unban", "tier", "quota", "auto_ban", "banned_user_refused", "prompt_refused", "prompt_unchecked",
     "quota_refused"}
)  # fmt: skip


@dataclass(frozen=True)
class AuditEntry:
    actor: str  # "platform:user_id" of who acted, or "system"
    action: str  # "ban", "unban", "tier", "quota", "cancel", "pause", "prompt_refused", "quota_refused", …
    target: str = ""  # the user, request or term acted on
    reason: str = ""
    community: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    actor_name: str | None = None  # display names when known, so the log can show people, not ids
    target_name: str | None = None

    def describe(self) -> str:
        return "".join(part if isinstance(part, str) else part.plain() for part in self.parts())

    def parts(self) -> list[Part]:
        """The entry as one line, with the users in it as values a front end shows its own way."""
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.at))
        actor: Part = self.actor if self.actor == "system" else UserRef.parse(self.actor, self.actor_name)
        parts: list[Part] = [f"{when} ", actor, f" {self.action}"]
        if self.target:
            user = self.action in USER_TARGETS and ":" in self.target
            parts += [" ", UserRef.parse(self.target, self.target_name) if user else self.target]
        if self.reason:
            parts.append(f" — {self.reason}")
        return parts


class AuditLog:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def record(self, entry: AuditEntry) -> str:
        fields = {"entry": json.dumps(asdict(entry))}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(AUDIT_STREAM, fields, maxlen=AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            if entry.community:
                stream = COMMUNITY_AUDIT_STREAM.format(community=entry.community)
                pipe.xadd(stream, fields, maxlen=COMMUNITY_AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]
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
        for _, fields in raw:
            entry = AuditEntry(**json.loads(fields[b"entry"]))
            if user and user not in (entry.actor, entry.target):
                continue
            if action and entry.action != action:
                continue
            entries.append(entry)
            if len(entries) >= limit:
                break
        return entries
