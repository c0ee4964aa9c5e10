"""Moderators' commands, one grammar for every platform: `/admin <command> …`.

    ban <user> [for <duration>] [reason…]     MOD    unban <user>                        MOD
    tier <user> <tier|default>                ADMIN  quota <user> <images/day|default>   ADMIN
    usage <user>                              MOD    queue                               MOD
    cancel <request id>                       MOD    pause | resume                      MOD
    block add|remove <term> | block list      MOD    policy nsfw|buttons|model <value>   ADMIN
    delete <request id> [image number]        MOD    audit [user <u>] [action <a>] [since <duration>]  MOD

<user> is a platform user id (front ends turn mentions and replies into ids before calling). Durations: 30m, 2h,
7d, 1w. Community-wide commands act on the community the command was sent in; bans sent in a community apply
there, and an OWNER's ban sent in a private chat applies everywhere. Every action is written to the audit log.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Protocol

from arq.connections import ArqRedis

from core import constants as c
from core.delivery.delivery_log import DeliveryLog
from core.delivery.result_store import ResultStore
from core.errors import InvalidRequest, NotAllowed, NotFound
from core.governance.admission import community_of, same_community
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.bans import BanList
from core.governance.cancellation import Canceller
from core.governance.community import CommunityStore, community_key
from core.governance.quotas import QuotaService, format_duration
from core.jobs.cache import ResultCache
from core.jobs.queue import CancelOutcome, JobQueue
from core.jobs.workers import WorkerRegistry
from core.models.privileges import Privilege, require
from core.models.request import GenerationRequest, Requester
from core.settings import Settings
from core.storage.protocol import ImageStore

_DURATION = re.compile(r"^(\d{1,5})([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MENTION = re.compile(r"^<@!?(\d+)>$")

NEEDS = {
    "ban": Privilege.MOD, "unban": Privilege.MOD, "usage": Privilege.MOD, "queue": Privilege.MOD,
    "cancel": Privilege.MOD, "pause": Privilege.MOD, "resume": Privilege.MOD, "block": Privilege.MOD,
    "delete": Privilege.MOD, "audit": Privilege.MOD,
    # tier and quota change a user's limits everywhere, so no single community's admin may set them
    "tier": Privilege.OWNER, "quota": Privilege.OWNER, "policy": Privilege.ADMIN,
}  # fmt: skip
USAGE = {
    "ban": "ban <user> [for <duration, e.g. 2h>] [reason]",
    "unban": "unban <user>",
    "tier": "tier <user> <tier|default>",
    "quota": "quota <user> <images per day|default>",
    "usage": "usage <user>",
    "queue": "queue",
    "cancel": "cancel <request id>",
    "pause": "pause",
    "resume": "resume",
    "block": "block add <term> | block remove <term> | block list",
    "policy": "policy nsfw <refuse|spoiler|allow|default> | buttons <owner|everyone> | model <name> "
    "| logchannel <here|off>",
    "delete": "delete <request id> [image number]",
    "audit": "audit [user <user>] [action <action>] [since <duration>]",
}


class TermStore(Protocol):
    """Per-community blocked terms (moderation.community_terms.CommunityBlocklist)."""

    async def add(self, community_id: str, term: str) -> str: ...

    async def remove(self, community_id: str, term: str) -> bool: ...

    async def list(self, community_id: str) -> list[str]: ...


@dataclass(frozen=True)
class AdminReply:
    text: str
    # Messages the front end should delete (from DeliveryLog), for `delete`.
    delete_messages: tuple[dict[str, str], ...] = field(default=())


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise InvalidRequest(
            "duration", f"“{text}” isn't a duration I understand; use e.g. 30m, 2h, 7d or 1w."
        )
    return int(match[1]) * _UNITS[match[2]]


def user_token(platform: str, token: str) -> str:
    """A user argument ("123", "<@123>") as an owner id "platform:123"."""
    mention = _MENTION.match(token)
    user = mention[1] if mention else token
    if not user.lstrip("-").isdigit():
        raise InvalidRequest(
            "user", f"“{token}” isn't a user I can find; mention them or use their numeric id."
        )
    return f"{platform}:{user}"


class AdminService:
    def __init__(
        self, redis: ArqRedis, settings: Settings, store: ImageStore, terms: TermStore, quotas: QuotaService
    ) -> None:
        self.settings = settings
        self.store = store
        self.terms = terms
        self.quotas = quotas
        self.audit = AuditLog(redis)
        self.bans = BanList(redis)
        self.communities = CommunityStore(redis)
        self.queue = JobQueue(redis)
        self.results = ResultStore(redis)
        self.workers = WorkerRegistry(redis)
        self.deliveries = DeliveryLog(redis)
        self.canceller = Canceller(redis, quotas)
        self.cache = ResultCache(redis)

    async def execute(self, text: str, actor: Requester) -> AdminReply:
        """Run one admin command typed by `actor` (whose privilege the front end computed)."""
        words = text.split()
        if not words or words[0].lower() == "help":
            return AdminReply(self.help(actor.privilege))
        command, args = words[0].lower(), words[1:]
        if command not in NEEDS:
            raise InvalidRequest("admin", f"Unknown admin command “{command}”. " + self.help(actor.privilege))
        try:
            require(actor.privilege, NEEDS[command], f"use /admin {command}")
        except NotAllowed as exc:
            await self._record(actor, AuditAction.ADMIN_REFUSED, command, exc.message)
            raise
        handler = getattr(self, f"_{command}")
        reply: AdminReply = await handler(args, actor)
        return reply

    def help(self, level: Privilege) -> str:
        lines = [f"/admin {USAGE[name]}" for name, needed in NEEDS.items() if level >= needed]
        return "Admin commands you can use:\n" + "\n".join(lines) if lines else "You have no admin commands."

    # -- helpers ---------------------------------------------------------------------------------------------

    @staticmethod
    def _args(args: list[str], command: str, least: int) -> None:
        if len(args) < least:
            raise InvalidRequest(command, f"Usage: /admin {USAGE[command]}")

    @staticmethod
    def _community(actor: Requester, command: str) -> str:
        if not actor.community_id:
            raise InvalidRequest(
                command, f"/admin {command} works in a group or server, not in a private chat."
            )
        return community_key(actor.platform, actor.community_id)

    def _scope(self, actor: Requester) -> str | None:
        """Where a ban applies: this community, or everywhere for an owner in a private chat."""
        if actor.community_id:
            return community_key(actor.platform, actor.community_id)
        require(actor.privilege, Privilege.OWNER, "ban everywhere (from a private chat)")
        return None

    @staticmethod
    def _may_see(actor: Requester, request: GenerationRequest) -> bool:
        """A moderator acts on requests made in their own community; only owners act across communities."""
        return actor.privilege >= Privilege.OWNER or same_community(actor, request.requester)

    def _require_here(self, actor: Requester, request: GenerationRequest, action: str) -> None:
        if not self._may_see(actor, request):
            raise NotAllowed(
                f"That request was made in another community, so you can't {action} it from here."
            )

    async def _record(
        self, actor: Requester, action: AuditAction, target: str = "", reason: str = "", **details: str
    ) -> None:
        actor_id, community = f"{actor.platform}:{actor.user_id}", community_of(actor)
        await self.audit.record(
            AuditEntry(
                actor=actor_id,
                action=action,
                target=target,
                reason=reason,
                community=community,
                details=details,
            )
        )

    # -- commands --------------------------------------------------------------------------------------------

    async def _ban(self, args: list[str], actor: Requester) -> AdminReply:
        self._args(args, "ban", 1)
        target = user_token(actor.platform, args[0])
        if target == f"{actor.platform}:{actor.user_id}":
            raise InvalidRequest("user", "You can't ban yourself.")
        if target in self.settings.owners:
            raise NotAllowed("The bot's owners can't be banned.")
        rest, duration = args[1:], None
        if len(rest) >= 2 and rest[0].lower() == "for" and _DURATION.match(rest[1].lower()):
            duration, rest = parse_duration(rest[1]), rest[2:]  # "for spamming" stays part of the reason
        reason = " ".join(rest)
        scope = self._scope(actor)
        await self.bans.ban(target, reason, f"{actor.platform}:{actor.user_id}", duration, scope=scope)
        await self._record(actor, AuditAction.BAN, target, reason, duration_s=str(int(duration or 0)))
        span = f" for {format_duration(duration)}" if duration else ""
        where = "here" if scope else "everywhere"
        return AdminReply(
            f"Banned {target.split(':', 1)[1]} {where}{span}" + (f": {reason}" if reason else ".")
        )

    async def _unban(self, args: list[str], actor: Requester) -> AdminReply:
        self._args(args, "unban", 1)
        target = user_token(actor.platform, args[0])
        lifted = await self.bans.unban(target, self._scope(actor))
        await self._record(actor, AuditAction.UNBAN, target)
        who = target.split(":", 1)[1]
        return AdminReply(f"Unbanned {who}." if lifted else f"{who} wasn't banned here.")

    async def _tier(self, args: list[str], actor: Requester) -> AdminReply:
        self._args(args, "tier", 2)
        target = user_token(actor.platform, args[0])
        tier = None if args[1].lower() == "default" else args[1].lower()
        await self.quotas.set_tier(target, tier)
        label = tier or "default"
        await self._record(actor, AuditAction.TIER, target, label)
        return AdminReply(f"{target.split(':', 1)[1]} is now on the {label} tier.")

    async def _quota(self, args: list[str], actor: Requester) -> AdminReply:
        self._args(args, "quota", 2)
        target = user_token(actor.platform, args[0])
        value = args[1].lower()
        if value != "default" and not value.isdigit():
            raise InvalidRequest("quota", "The quota is a number of images per day, or “default”.")
        await self.quotas.set_daily_override(target, None if value == "default" else int(value))
        await self._record(actor, AuditAction.QUOTA, target, value)
        who = target.split(":", 1)[1]
        if value == "default":
            return AdminReply(f"{who} is back on their tier's daily quota.")
        return AdminReply(f"{who} may now make {value} images a day.")

    async def _usage(self, args: list[str], actor: Requester) -> AdminReply:
        self._args(args, "usage", 1)
        target = user_token(actor.platform, args[0])
        who = Requester(
            platform=actor.platform,
            user_id=target.split(":", 1)[1],
            chat_id=actor.chat_id,
            community_id=actor.community_id,
        )
        status = await self.quotas.status(who)
        lines = [f"Usage of {who.user_id}:", status.describe()]
        ban = await self.bans.get(target, community_of(actor))
        if ban:
            lines.append(f"Banned ({ban.reason or 'no reason given'})")
        shown = []
        for request_id in await self.queue.recent(target, 10):
            try:
                request = await self.queue.load(request_id)
            except NotFound:
                continue
            if not self._may_see(actor, request):  # another community's requests are theirs to see
                continue
            try:
                state = (await self.results.load(request_id)).kind.value
            except NotFound:
                state = "queued or running"
            shown.append(f"  {request_id} — {state}")
        if shown:
            lines.append("Recent requests here:")
            lines.extend(shown[:5])
        return AdminReply("\n".join(lines))

    async def _queue(self, args: list[str], actor: Requester) -> AdminReply:
        lines = []
        for queue in (c.QUEUE_GPU, c.QUEUE_CLOUD):
            depth = await self.queue.depth(queue)
            workers = await self.workers.serving(queue)
            typical = await self.queue.typical_duration(queue)
            eta = (
                f", about {round(typical * depth / max(1, len(workers)))} s to clear"
                if typical and depth
                else ""
            )
            name = queue.rsplit(":", 1)[-1]
            lines.append(f"{name}: {depth} waiting, {len(workers)} worker(s){eta}")
            lines.extend(
                f"  {worker.worker_id}: {', '.join(worker.models)} ({worker.jobs_done} jobs done)"
                for worker in workers
            )
        return AdminReply("\n".join(lines))

    async def _cancel(self, args: list[str], actor: Requester) -> AdminReply:
        self._args(args, "cancel", 1)
        request_id = args[0]
        request = await self.queue.load(request_id)
        self._require_here(actor, request, "cancel")
        outcome = await self.canceller.cancel(request, actor)
        if outcome == CancelOutcome.CANCELLED:
            return AdminReply(f"Cancelled {request_id} (owner {request.requester.user_id}).")
        if outcome == CancelOutcome.RUNNING:
            return AdminReply(f"{request_id} is already rendering; it will finish.")
        return AdminReply(f"{request_id} isn't waiting in any queue (it may be done).")

    async def _pause(self, args: list[str], actor: Requester) -> AdminReply:
        community = self._community(actor, "pause")
        await self.communities.pause(community, True)
        await self._record(actor, AuditAction.PAUSE, community, " ".join(args))
        return AdminReply("Image generation is paused here. /admin resume turns it back on.")

    async def _resume(self, args: list[str], actor: Requester) -> AdminReply:
        community = self._community(actor, "resume")
        await self.communities.pause(community, False)
        await self._record(actor, AuditAction.RESUME, community)
        return AdminReply("Image generation is back on here.")

    async def _block(self, args: list[str], actor: Requester) -> AdminReply:
        community = self._community(actor, "block")
        self._args(args, "block", 1)
        action, term = args[0].lower(), " ".join(args[1:])
        if action == "list":
            terms = await self.terms.list(community)
            return AdminReply(
                "Blocked terms here: " + ", ".join(terms) if terms else "No blocked terms here yet."
            )
        if action not in ("add", "remove") or not term:
            raise InvalidRequest("block", f"Usage: /admin {USAGE['block']}")
        if action == "add":
            stored = await self.terms.add(community, term)
            await self._record(actor, AuditAction.BLOCK_ADD, stored)
            return AdminReply(f"Prompts containing “{stored}” are now refused here.")
        removed = await self.terms.remove(community, term)
        await self._record(actor, AuditAction.BLOCK_REMOVE, term)
        return AdminReply(
            f"“{term}” is no longer blocked here." if removed else f"“{term}” wasn't blocked here."
        )

    async def _policy(self, args: list[str], actor: Requester) -> AdminReply:
        community = self._community(actor, "policy")
        self._args(args, "policy", 2)
        name, value = args[0].lower(), args[1]
        if name == "logchannel":  # only this chat: a chat id typed by hand could be another community's
            if value.lower() not in ("here", "off"):
                raise InvalidRequest(
                    "logchannel",
                    "Send “/admin policy logchannel here” in the chat that should get moderator notices, "
                    "or “off” to stop them.",
                )
            value = actor.chat_id if value.lower() == "here" else "off"
        policy = await self.communities.set_policy(community, name, value)
        await self._record(actor, AuditAction.POLICY, community, f"{name}={value}")
        log_channel = "this chat" if policy.log_channel == actor.chat_id else (policy.log_channel or "none")
        return AdminReply(
            f"Policy here: NSFW {policy.nsfw or 'bot default'} (only ever in age-restricted channels), "
            f"buttons for {policy.buttons}, default model {policy.default_model or 'bot default'}, "
            f"moderator notices to {log_channel}."
        )

    async def _delete(self, args: list[str], actor: Requester) -> AdminReply:
        """Remove a result (or one of its images) and the messages that show it.

        The grid and the chat preview show every image, so they go whenever any image does. A result served from
        the cache shares its files with the result first made with them (perhaps in another community): then only
        this result and its messages go, and the cache entry is dropped so it is never replayed again.
        """
        self._args(args, "delete", 1)
        request_id = args[0]
        request = await self.queue.load(request_id)
        self._require_here(actor, request, "delete")
        result = await self.results.load(request_id)
        chosen = list(result.images)
        if len(args) > 1:
            wanted = int(args[1]) - 1 if args[1].isdigit() else -1
            chosen = [image for image in result.images if image.index == wanted]
            if not chosen:
                numbers = ", ".join(str((image.index or 0) + 1) for image in result.images) or "none left"
                raise InvalidRequest("delete", f"That result's images are: {numbers}.")
        doomed = [image.key for image in chosen] + [
            extra.key for extra in (result.grid, result.preview) if extra is not None
        ]
        if not result.cached:
            for key in doomed:
                await self.store.delete(key)
        await self.cache.forget(request)
        await self.results.save(
            result.model_copy(
                update={
                    "images": tuple(image for image in result.images if image.key not in doomed),
                    "grid": None,
                    "preview": None,
                }
            )
        )
        await self._record(
            actor, AuditAction.DELETE, request_id, files=str(0 if result.cached else len(doomed))
        )
        messages = tuple(await self.deliveries.locations(request_id))
        if result.cached:
            text = f"Removed {request_id}; its files are shared with the result it was copied from, so they stay."
        else:
            text = f"Deleted {len(doomed)} file(s) of {request_id}."
        return AdminReply(text, delete_messages=messages)

    async def _audit(self, args: list[str], actor: Requester) -> AdminReply:
        filters: dict[str, str] = {}
        for index in range(0, len(args) - 1, 2):
            filters[args[index].lower()] = args[index + 1]
        unknown = set(filters) - {"user", "action", "since"}
        if unknown or len(args) % 2:
            raise InvalidRequest("audit", f"Usage: /admin {USAGE['audit']}")
        since = time.time() - parse_duration(filters["since"]) if "since" in filters else None
        user = user_token(actor.platform, filters["user"]) if "user" in filters else None
        community = community_of(actor)
        if community is None:
            require(actor.privilege, Privilege.OWNER, "read the whole audit log (from a private chat)")
        entries = await self.audit.read(
            user=user, action=filters.get("action"), community=community, since=since
        )
        if not entries:
            return AdminReply("No audit entries match.")
        return AdminReply("\n".join(entry.describe() for entry in entries))
