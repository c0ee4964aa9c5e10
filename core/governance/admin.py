"""Moderators' commands, one grammar for every platform: `/admin <command> …`.

    ban <user> [for <duration>] [reason…]     MOD    unban <user>                        MOD
    tier <user> <tier|default>                OWNER  quota <user> <images/day|default>   OWNER
    usage <user>                              MOD    queue                               MOD
    cancel <request id>                       MOD    pause | resume                      MOD
    block add|remove <term> | block list      MOD    policy nsfw|buttons|model <value>   ADMIN
    delete <request id> [image number]        MOD    audit [user <u>] [action <a>] [since <duration>]  MOD
    lora deny|allow <name> | lora list        MOD
    style add|remove|list …                   MOD    check (an image attached or replied to)  MOD
    stats [here] [yesterday]                  MOD    (moderators: their community; owners: the whole bot)

<user> is a platform user id (front ends turn mentions and replies into ids before calling); arguments are
checked in admin_arguments.py. Community-wide commands act on the community the command was sent in; bans
sent in a community apply there, and an OWNER's ban sent in a private chat applies everywhere. Every action is
written to the audit log.

Rank: nobody acts on someone of equal or higher privilege (ban, unban, tier, quota; cancel and delete of their
requests), and nobody lifts their own ban. The target's privilege (and roles and name) comes from the front end
through `lookup`: given a user id, the target's Requester as seen where the command was sent, or None when the
front end doesn't know them (then they count as a plain user, or an owner from settings). Front ends must pass
it: without it a moderator could act on an administrator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.errors import InvalidRequest, NotAllowed, NotFound
from core.governance.admin_arguments import (
    USAGE,
    audit_query,
    ban_terms,
    parse_duration,
    quota_value,
    user_token,
)
from core.governance.admin_community import CommunityAdmin, TermStore
from core.governance.admin_reply import AdminReply, Part, UserRef
from core.governance.admission import community_of
from core.governance.audit import AuditAction, entry_parts
from core.governance.bans import GLOBAL, PRIVATE, scope_of
from core.governance.community import community_key
from core.governance.quotas import format_duration, owner_id
from core.governance.stats import ALL, StatsReader, day_of, describe
from core.models.privileges import Privilege, require
from core.models.request import Requester

__all__ = ["AdminReply", "AdminService", "TargetLookup", "TermStore", "UserRef", "parse_duration"]

TargetLookup = Callable[[str], Awaitable[Requester | None]]

NEEDS = {
    "ban": Privilege.MOD, "unban": Privilege.MOD, "usage": Privilege.MOD, "queue": Privilege.MOD,
    "cancel": Privilege.MOD, "pause": Privilege.MOD, "resume": Privilege.MOD, "block": Privilege.MOD,
    "delete": Privilege.MOD, "audit": Privilege.MOD, "lora": Privilege.MOD, "style": Privilege.MOD,
    "check": Privilege.MOD, "stats": Privilege.MOD,
    # tier and quota change a user's limits everywhere, so no single community's admin may set them
    "tier": Privilege.OWNER, "quota": Privilege.OWNER, "policy": Privilege.ADMIN,
}  # fmt: skip
SELF = {
    "ban": "You can't ban yourself.",
    "unban": "You can't lift your own ban; another moderator has to.",
    "tier": "You can't change your own tier; another owner has to.",
    "quota": "You can't change your own quota; another owner has to.",
}


class AdminService(CommunityAdmin):
    async def execute(self, text: str, actor: Requester, lookup: TargetLookup | None = None) -> AdminReply:
        """Run one admin command typed by `actor` (whose privilege the front end computed); `lookup` finds the
        user a command names, as the front end sees them here (module docstring)."""
        words = text.split()
        if not words or words[0].lower() == "help":
            return AdminReply.of(self.help(actor.privilege))
        command, args = words[0].lower(), words[1:]
        if command not in NEEDS:
            raise InvalidRequest("admin", f"Unknown admin command “{command}”. " + self.help(actor.privilege))
        try:
            require(actor.privilege, NEEDS[command], f"use /admin {command}")
        except NotAllowed as exc:
            await self._record(actor, AuditAction.ADMIN_REFUSED, command, exc.message)
            raise
        handler = getattr(self, f"_{command}")
        reply: AdminReply = await handler(args, actor, lookup)
        return reply

    def help(self, level: Privilege) -> str:
        lines = [f"/admin {USAGE[name]}" for name, needed in NEEDS.items() if level >= needed]
        return "Admin commands you can use:\n" + "\n".join(lines) if lines else "You have no admin commands."

    # -- helpers ---------------------------------------------------------------------------------------------

    @staticmethod
    def _scope(actor: Requester) -> str:
        """Where a ban applies: this community, or everywhere for an owner in a private chat."""
        if actor.community_id:
            return community_key(actor.platform, actor.community_id)
        require(actor.privilege, Privilege.OWNER, "ban or unban everywhere (from a private chat)")
        return GLOBAL

    async def _target(
        self, actor: Requester, token: str, lookup: TargetLookup | None, action: str | None = None
    ) -> Requester:
        """The user a command names, as the front end sees them here; with `action`, checked that `actor` may
        do it to them (not themselves, and only to someone of lower rank)."""
        user_id = user_token(actor.platform, token).split(":", 1)[1]
        found = await lookup(user_id) if lookup is not None else None
        if found is None or (found.platform, found.user_id) != (actor.platform, user_id):
            found = Requester(
                platform=actor.platform,
                user_id=user_id,
                chat_id=actor.chat_id,
                community_id=actor.community_id,
            )
        target = found.model_copy(update={"privilege": self._level(found)})
        if action is None:
            return target
        if user_id == actor.user_id:
            raise InvalidRequest("user", SELF[action])
        if target.privilege >= self._level(actor):
            if action == "ban" and target.privilege == Privilege.OWNER:
                raise NotAllowed("The bot's owners can't be banned.")
            raise NotAllowed(
                f"You can't use /admin {action} on someone whose rank here "
                f"({target.privilege.name.lower()}) is as high as yours or higher."
            )
        return target

    # -- commands on users -----------------------------------------------------------------------------------

    async def _ban(self, args: list[str], actor: Requester, lookup: TargetLookup | None) -> AdminReply:
        self._args(args, "ban", 1)
        duration, reason = ban_terms(args[1:])
        target = await self._target(actor, args[0], lookup, "ban")
        scope = self._scope(actor)
        await self.bans.ban(owner_id(target), reason, owner_id(actor), duration, scope=scope)
        await self._record(
            actor,
            AuditAction.BAN,
            owner_id(target),
            reason,
            target.display_name,
            duration_s=str(int(duration or 0)),
        )
        span = f" for {format_duration(duration)}" if duration else ""
        where = "everywhere" if scope == GLOBAL else "here"
        ending = f": {reason}" if reason else "."
        return AdminReply.of("Banned ", UserRef.of(target), f" {where}{span}{ending}")

    async def _unban(self, args: list[str], actor: Requester, lookup: TargetLookup | None) -> AdminReply:
        self._args(args, "unban", 1)
        target = await self._target(actor, args[0], lookup, "unban")
        scopes = [self._scope(actor)]
        if scopes == [GLOBAL]:  # an owner in a private chat lifts the bans that apply there too
            scopes.append(PRIVATE)
        lifted = [await self.bans.unban(owner_id(target), scope) for scope in scopes]
        await self._record(actor, AuditAction.UNBAN, owner_id(target), target_name=target.display_name)
        if any(lifted):
            return AdminReply.of("Unbanned ", UserRef.of(target), ".")
        return AdminReply.of(UserRef.of(target), " wasn't banned here.")

    async def _tier(self, args: list[str], actor: Requester, lookup: TargetLookup | None) -> AdminReply:
        self._args(args, "tier", 2)
        target = await self._target(actor, args[0], lookup, "tier")
        tier = None if args[1].lower() == "default" else args[1].lower()
        await self.quotas.set_tier(owner_id(target), tier)
        label = tier or "default"
        await self._record(actor, AuditAction.TIER, owner_id(target), label, target.display_name)
        return AdminReply.of(UserRef.of(target), f" is now on the {label} tier.")

    async def _quota(self, args: list[str], actor: Requester, lookup: TargetLookup | None) -> AdminReply:
        self._args(args, "quota", 2)
        value = quota_value(args[1])
        target = await self._target(actor, args[0], lookup, "quota")
        await self.quotas.set_daily_override(owner_id(target), value)
        label = "default" if value is None else str(value)
        await self._record(actor, AuditAction.QUOTA, owner_id(target), label, target.display_name)
        if value is None:
            return AdminReply.of(UserRef.of(target), " is back on their tier's daily quota.")
        return AdminReply.of(UserRef.of(target), f" may now make {value} images a day.")

    async def _usage(self, args: list[str], actor: Requester, lookup: TargetLookup | None) -> AdminReply:
        """Limits (with the tier their roles give), active bans and recent requests made here."""
        self._args(args, "usage", 1)
        target = await self._target(actor, args[0], lookup)
        status = await self.quotas.status(target)
        lines: list[list[Part]] = [["Usage of ", UserRef.of(target), ":"], [status.describe()]]
        here = community_of(actor)
        for ban in await self.bans.active(owner_id(target)):
            if self._level(actor) >= Privilege.OWNER or ban.scope in (GLOBAL, scope_of(here)):
                lines.append([ban.describe(here)])
        shown: list[list[Part]] = []
        for request_id in await self.queue.recent(owner_id(target), 10):
            line = await self._request_line(request_id, actor)
            if line:
                shown.append([line])
        if shown:
            lines += [["Recent requests here:"], *shown[:5]]
        return AdminReply.lines(lines)

    async def _request_line(self, request_id: str, actor: Requester) -> str | None:
        """ "  <id> — <state>" for a request `actor` may see (another community's are theirs to see)."""
        try:
            request = await self.queue.load(request_id)
        except NotFound:
            return None
        if not self._may_see(actor, request):
            return None
        try:
            state = (await self.results.load(request_id)).kind.value
        except NotFound:
            state = "queued or running"
        return f"  {request_id} — {state}"

    async def _audit(self, args: list[str], actor: Requester, lookup: TargetLookup | None) -> AdminReply:
        query = audit_query(actor.platform, args)
        community = community_of(actor)
        if community is None:
            require(actor.privilege, Privilege.OWNER, "read the whole audit log (from a private chat)")
        # Generations are many: shown when asked for ("action generated"), not between moderators' actions.
        skip = frozenset() if query.action else frozenset({AuditAction.GENERATED.value})
        entries = await self.audit.read(
            user=query.user, action=query.action, community=community, since=query.since, skip=skip
        )
        if not entries:
            return AdminReply.of("No audit entries match.")
        return AdminReply.lines(entry_parts(entry) for entry in entries)

    async def _stats(self, args: list[str], actor: Requester, lookup: TargetLookup | None) -> AdminReply:
        """Today's (or yesterday's) numbers: a moderator's community, or the whole bot for an owner."""
        words = [word.lower() for word in args]
        unknown = [word for word in words if word not in ("here", "yesterday", "today")]
        if unknown:
            raise InvalidRequest("stats", f"Usage: /admin {USAGE['stats']}")
        community = community_of(actor)
        owner = self._level(actor) >= Privilege.OWNER
        if community is None and not owner:
            raise InvalidRequest(
                "stats", "/admin stats works in a group or server, where it shows that community."
            )
        scope = community if community is not None and (not owner or "here" in words) else ALL
        day = day_of(self.quotas.now(), 1 if "yesterday" in words else 0)
        return AdminReply.lines(describe(await StatsReader(self.audit.redis).day(scope, day)))
