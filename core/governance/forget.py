"""/forget: a user deletes their own data, after a confirmation, and is told exactly what went.

Two steps. `plan` counts what would go and hands out a one-time token (FORGET_KEY, ten minutes) for the front
end's confirmation button; `confirm` (the button, pressed by the same user) does it:

1. their waiting jobs are cancelled first (refunded, as any cancel), and jobs being drawn right now are marked
   cancelled, so the worker drops their images when the render ends instead of posting them (nothing charged);
2. every request of theirs still kept (core.jobs.queue's per-user index, the recent list, /history): the request,
   its result, where it was posted (the front end deletes those messages where it still can), its images in
   storage — unless another result still shows the same file — its upload, and the result cache entry it made;
3. their /settings, recent-request list, /history and per-user request index; their name in today's and past
   days' busiest users (/admin stats);
4. the audit trail: every entry naming them (as actor, target or in its details) now names a pseudonym instead
   — a keyed hash of their id (settings.retention.pseudonym_key, or a random key per /forget) — and loses the
   prompt it quoted. One FORGET entry, by the pseudonym, says what was removed.

Kept, on purpose: today's and this hour's image counts (a /forget must not reset a quota: they expire within two
days and hold no content), reservations in flight (so nothing is charged twice), and bans, tiers and quota
overrides (a moderator's decision about the user, not the user's data).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field

from arq.connections import ArqRedis

from core import constants as c
from core.delivery.delivery_log import DeliveryLog
from core.delivery.result_store import ResultStore, stored_keys
from core.delivery.tally import ALL, utc_day
from core.errors import InvalidRequest, NotAllowed, NotFound
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.cancellation import Canceller
from core.governance.community import community_key
from core.governance.quotas import owner_id
from core.jobs.cache import ResultCache
from core.jobs.queue import CancelOutcome, JobQueue
from core.keys import (
    AUDIT_STREAM,
    COMMUNITY_AUDIT_STREAM,
    FORGET_CONFIRM_TTL_S,
    FORGET_KEY,
    GENERATED_KEY,
    HISTORY_KEY,
    MESSAGES_KEY,
    PREFS_KEY,
    RECENT_KEY,
    REQUEST_KEY,
    RESULT_KEY,
    STATS_USERS_KEY,
    USER_REQUESTS_KEY,
)
from core.models.ids import new_request_id
from core.models.request import GenerationRequest, Requester
from core.models.result import ResultEvent
from core.settings import Settings
from core.storage.protocol import INPUT_PREFIX, ImageStore

log = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "forgotten:"
BUTTON_PATTERN = rf"^{c.FORGET_PREFIX}:(?P<answer>[{c.FORGET_YES}{c.FORGET_NO}]):(?P<token>[a-z2-7]{{16}})$"
_BUTTON = re.compile(BUTTON_PATTERN)
QUOTED = ("prompt", "negative_prompt", "normalized")  # audit details that quote what the user wrote
EXPIRED = "That confirmation has expired or was used already; send /forget again."


def forget_button(token: str, confirm: bool) -> str:
    """The id of /forget's "Forget me" (confirm) or "Keep my data" button."""
    return f"{c.FORGET_PREFIX}:{c.FORGET_YES if confirm else c.FORGET_NO}:{token}"


def decode_forget_button(data: str) -> tuple[bool, str]:
    """(confirm, token) from a button id; InvalidRequest for anything else."""
    match = _BUTTON.fullmatch(data)
    if match is None:
        raise InvalidRequest("forget", EXPIRED)
    return match["answer"] == c.FORGET_YES, match["token"]


@dataclass(frozen=True)
class ForgetPlan:
    token: str
    requests: int
    images: int
    waiting: int  # jobs not started or being drawn, cancelled first

    def text(self) -> str:
        jobs = (
            f" {self.waiting} job(s) of yours still in progress are cancelled first." if self.waiting else ""
        )
        return (
            "This deletes what I keep about you: "
            f"{self.requests} request(s) with their results and {self.images} stored image(s) (from storage and "
            "the result cache, and the messages showing them where I still can), your /settings and history, "
            f"and it replaces your id in the audit trail with a pseudonym.{jobs} It can't be undone. "
            "Press “Forget me” within 10 minutes to go ahead."
        )


@dataclass(frozen=True)
class Forgotten:
    requests: int
    results: int
    files_deleted: int
    files_kept: int  # other results show the same files
    cancelled: int  # waiting jobs cancelled and refunded
    stopped: int  # jobs being drawn, dropped when they end
    preferences: bool
    audit_entries: int
    pseudonym: str
    messages: tuple[dict[str, str], ...] = field(default=())  # where results were posted, for the front end

    def text(self, removed_messages: int | None = None) -> str:
        lines = ["Done — I've forgotten you. Removed:"]
        lines.append(f"• {self.requests} request(s) and {self.results} result(s)")
        kept = f" ({self.files_kept} more are also in other results, so they stay)" if self.files_kept else ""
        lines.append(f"• {self.files_deleted} stored image(s){kept}")
        if self.cancelled:
            lines.append(f"• {self.cancelled} waiting job(s), cancelled — nothing charged")
        if self.stopped:
            lines.append(f"• {self.stopped} job(s) being drawn: dropped when they finish — nothing charged")
        lines.append("• your /settings and history" if self.preferences else "• your history")
        lines.append(f"• your id from {self.audit_entries} audit entr(ies): they now say {self.pseudonym}")
        if removed_messages is not None and self.messages:
            lines.append(f"• {removed_messages} of {len(self.messages)} posted result message(s)")
        lines.append(
            "Kept: today's image count against your quota (it resets at 00:00 UTC), and any ban, tier or "
            "quota a moderator set."
        )
        return "\n".join(lines)


@dataclass
class _Tally:
    requests: int = 0
    results: int = 0
    deleted: int = 0
    kept: int = 0
    cancelled: int = 0
    stopped: int = 0
    communities: set[str] = field(default_factory=set)
    messages: list[dict[str, str]] = field(default_factory=list)


def pseudonym(owner: str, key: bytes) -> str:
    """The keyed hash that replaces a user id: the same id and key always give the same pseudonym."""
    return PSEUDONYM_PREFIX + hmac.new(key, owner.encode(), hashlib.sha256).hexdigest()[:16]


def pseudonymised(entry: AuditEntry, owner: str, alias: str) -> AuditEntry | None:
    """The entry with `owner` replaced by `alias` everywhere and their quoted words dropped; None if untouched."""
    about = owner in (entry.actor, entry.target) or owner in entry.details.values()
    if not about:
        return None
    details = {key: (alias if value == owner else value) for key, value in entry.details.items()}
    for key in QUOTED:
        if key in details:
            details[key] = "(forgotten)"
    return entry.model_copy(
        update={
            "actor": alias if entry.actor == owner else entry.actor,
            "actor_name": None if entry.actor == owner else entry.actor_name,
            "target": alias if entry.target == owner else entry.target,
            "target_name": None if entry.target == owner else entry.target_name,
            "details": details,
        }
    )


class Forgetter:
    def __init__(self, redis: ArqRedis, settings: Settings, store: ImageStore, canceller: Canceller) -> None:
        retention = settings.retention
        self.redis = redis
        self.settings = settings
        self.store = store
        self.canceller = canceller
        self.queue = JobQueue(redis, ttl_s=retention.requests_s)
        self.results = ResultStore(redis, ttl_s=retention.results_s)
        self.cache = ResultCache(redis, ttl_s=retention.results_s)
        self.deliveries = DeliveryLog(redis, ttl_s=retention.results_s)
        self.audit = AuditLog(redis, keep_s=retention.audit_s)

    # -- step 1: what would go, and the confirmation token -----------------------------------------------------

    async def plan(self, requester: Requester) -> ForgetPlan:
        owner = owner_id(requester)
        ids = await self._request_ids(owner)
        images = waiting = 0
        for request_id in ids:
            try:
                images += len(stored_keys(await self.results.load(request_id)))
            except NotFound:
                waiting += await self.queue.pending(request_id)
        token = new_request_id()
        await self.redis.set(FORGET_KEY.format(token=token), owner, ex=FORGET_CONFIRM_TTL_S)
        return ForgetPlan(token, len(ids), images, waiting)

    async def keep(self, token: str, requester: Requester) -> None:
        """The user pressed "Keep my data": the token is dropped."""
        await self._claim(token, requester)

    async def check(self, token: str, requester: Requester) -> str:
        """The owner of a pending /forget, if `requester` may confirm it (InvalidRequest, NotAllowed if not)."""
        owner = await self.redis.get(FORGET_KEY.format(token=token))
        if owner is None:
            raise InvalidRequest("forget", EXPIRED)
        if owner.decode() != owner_id(requester):
            raise NotAllowed("Only the person who asked to be forgotten can press this.")
        return str(owner.decode())

    async def _claim(self, token: str, requester: Requester) -> str:
        owner = await self.check(token, requester)
        if not await self.redis.delete(FORGET_KEY.format(token=token)):  # pressed twice at once: one does it
            raise InvalidRequest("forget", EXPIRED)
        return owner

    # -- step 2: the confirmation ---------------------------------------------------------------------------

    async def confirm(self, token: str, requester: Requester) -> Forgotten:
        owner = await self._claim(token, requester)
        ids = await self._request_ids(owner)
        tally = _Tally()
        for request_id in ids:
            await self._forget_request(request_id, owner, requester, set(ids), tally)
        prefs = PREFS_KEY.format(platform=requester.platform, user_id=requester.user_id)
        had_prefs = bool(await self.redis.exists(prefs))
        await self.redis.delete(
            prefs,
            RECENT_KEY.format(owner=owner),
            USER_REQUESTS_KEY.format(owner=owner),
            HISTORY_KEY.format(owner=owner),
        )
        await self._leave_stats(owner, tally.communities | _community(requester))
        key = self._pseudonym_key()
        alias = pseudonym(owner, key)
        entries = await self._pseudonymise(owner, alias, requester.platform)
        done = Forgotten(
            requests=tally.requests,
            results=tally.results,
            files_deleted=tally.deleted,
            files_kept=tally.kept,
            cancelled=tally.cancelled,
            stopped=tally.stopped,
            preferences=had_prefs,
            audit_entries=entries,
            pseudonym=alias,
            messages=tuple(tally.messages),
        )
        await self.audit.record(
            AuditEntry(
                actor=alias,
                action=AuditAction.FORGET,
                details={
                    "requests": str(done.requests),
                    "files_deleted": str(done.files_deleted),
                    "cancelled": str(done.cancelled + done.stopped),
                    "audit_entries": str(entries),
                },
            )
        )
        log.info("a user was forgotten (%s): %d requests, %d files", alias, done.requests, done.files_deleted)
        return done

    async def _request_ids(self, owner: str) -> list[str]:
        every = await self.queue.every_request(owner)
        recent = await self.queue.recent(owner, 1000)
        history = [m.decode() for m in await self.redis.zrange(HISTORY_KEY.format(owner=owner), 0, -1)]
        return list(dict.fromkeys([*every, *recent, *history]))

    async def _forget_request(
        self, request_id: str, owner: str, requester: Requester, mine: set[str], tally: _Tally
    ) -> None:
        try:
            request: GenerationRequest | None = await self.queue.load(request_id)
        except (NotFound, ValueError):  # expired, or not an image request (/describe keeps its own)
            request = None
        if request is not None and owner_id(request.requester) != owner:
            return  # never someone else's, whatever an index says
        result = await self._result(request_id)
        if request is not None:
            tally.requests += 1
            if request.requester.community_id:
                tally.communities.add(
                    community_key(request.requester.platform, request.requester.community_id)
                )
            if result is None:
                await self._stop(request, requester, tally)
            await self.cache.forget(request, only_from=mine)
            for upload in (request.source_image, request.mask_image):
                if upload and upload.startswith(f"{INPUT_PREFIX}/"):
                    await self.store.delete(upload)
        if result is not None:
            tally.results += 1
            shown = stored_keys(result)
            unused = await self.results.release(request_id, shown)
            for key in unused:
                await self.store.delete(key)
            tally.deleted += len(unused)
            tally.kept += len(shown) - len(unused)
        tally.messages += await self.deliveries.locations(request_id)
        await self.redis.delete(
            REQUEST_KEY.format(request_id=request_id),
            RESULT_KEY.format(request_id=request_id),
            MESSAGES_KEY.format(request_id=request_id),
            GENERATED_KEY.format(request_id=request_id),
        )

    async def _result(self, request_id: str) -> ResultEvent | None:
        try:
            result = await self.results.load(request_id)
        except NotFound:
            return None
        return result

    async def _stop(self, request: GenerationRequest, requester: Requester, tally: _Tally) -> None:
        """A request with no result yet: cancel it if it waits; if it is being drawn, mark it cancelled."""
        outcome = await self.canceller.cancel(request, requester)
        if outcome is CancelOutcome.CANCELLED:
            tally.cancelled += 1
            return
        await self.queue.mark_cancelled(request.request_id)  # the worker drops what it makes
        if outcome is CancelOutcome.RUNNING:
            tally.stopped += 1

    async def _leave_stats(self, owner: str, communities: set[str]) -> None:
        now = time.time()
        days = [utc_day(now - 86400 * back) for back in range(self.settings.retention.stats_days + 1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in (ALL, *communities):
                for day in days:
                    pipe.zrem(STATS_USERS_KEY.format(scope=scope, day=day), owner)
            await pipe.execute()

    def _pseudonym_key(self) -> bytes:
        configured = self.settings.retention.pseudonym_key
        return configured.get_secret_value().encode() if configured else secrets.token_bytes(32)

    async def _pseudonymise(self, owner: str, alias: str, platform: str) -> int:
        streams = [AUDIT_STREAM]
        pattern = COMMUNITY_AUDIT_STREAM.format(community=f"{platform}:*")
        streams += [key.decode() async for key in self.redis.scan_iter(match=pattern, count=1000)]
        changed = 0
        for stream in dict.fromkeys(streams):
            if ":rewrite:" in stream:
                continue
            count = await self.audit.rewrite(stream, lambda entry: pseudonymised(entry, owner, alias))
            changed += count if stream == AUDIT_STREAM else 0  # a community's entries are in both
        return changed


def _community(requester: Requester) -> set[str]:
    return {community_key(requester.platform, requester.community_id)} if requester.community_id else set()
