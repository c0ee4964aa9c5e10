"""Who may queue what, checked before any GPU time is spent: bans, paused communities, the prompt, the quota.

Every refusal is written to the audit log. Repeated prompt refusals within a window give an automatic temporary
ban (settings.privileges.refusals_before_ban), also audited.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from core import constants as c
from core.delivery.events import EventPublisher
from core.delivery.tally import DailyTally
from core.errors import InvalidRequest, NotAllowed, PromptRejected, QuotaExceeded
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.bans import BanList, scope_of
from core.governance.community import CommunityPolicy, CommunityStore, community_key
from core.governance.quotas import QuotaService, format_duration, owner_id, paid_quote
from core.jobs.fairness import FairScheduler
from core.models.ids import new_request_id
from core.models.request import GenerationRequest, Requester
from core.models.result import EventKind, ResultEvent
from core.models.verdict import Outcome, PromptModerator
from core.settings import Settings

log = logging.getLogger(__name__)


def community_of(requester: Requester) -> str | None:
    return community_key(requester.platform, requester.community_id) if requester.community_id else None


def same_community(a: Requester, b: Requester) -> bool:
    """Both in the same Discord server or Telegram group (never true for private chats)."""
    return community_of(a) is not None and community_of(a) == community_of(b)


class Admission:
    def __init__(self, redis: Redis, settings: Settings, moderator: PromptModerator) -> None:
        self.settings = settings
        self.moderator = moderator
        self.audit = AuditLog(redis, keep_s=settings.retention.audit_s)
        self.tally = DailyTally(redis, settings.retention.stats_s)
        self.bans = BanList(redis)
        self.communities = CommunityStore(redis)
        self.quotas = QuotaService(redis, settings.quotas)
        self.fair = FairScheduler(redis)
        self.events = EventPublisher(redis)

    async def admit(self, requester: Requester) -> CommunityPolicy:
        """Raise NotAllowed for a banned user or a paused community; return the community's policy."""
        owner, community = owner_id(requester), community_of(requester)
        try:
            await self.bans.check(owner, community)
        except NotAllowed:
            await self.tally.refusal("banned", requester)
            await self.audit.record(
                AuditEntry(
                    actor="system",
                    action=AuditAction.BANNED_USER_REFUSED,
                    target=owner,
                    community=community,
                    target_name=requester.display_name,
                )
            )
            raise
        if await self.communities.is_paused(community):
            await self.tally.refusal("paused", requester)
            raise NotAllowed(
                "Image generation is paused in this community by its moderators. Please try later."
            )
        return await self.communities.policy(community)

    async def check_prompt(self, prompt: str, negative: str, requester: Requester) -> None:
        verdict = await self.moderator.check_prompt(prompt, negative, community_of(requester))
        if verdict.outcome is Outcome.ALLOWED:
            return
        owner = owner_id(requester)
        unchecked = verdict.outcome is Outcome.CHECK_FAILED or verdict.reason_code == "moderation_unavailable"
        log.info("prompt refused for %s (%s %s)", owner, verdict.reason_code, ",".join(verdict.categories))
        await self.tally.refusal("prompt_unchecked" if unchecked else "prompt", requester)
        await self.audit.record(
            AuditEntry(
                actor="system",
                action=AuditAction.PROMPT_UNCHECKED if unchecked else AuditAction.PROMPT_REFUSED,
                target=owner,
                reason=verdict.reason_code,
                community=community_of(requester),
                details={"categories": ",".join(verdict.categories), "normalized": verdict.normalized[:500]},
                target_name=requester.display_name,
            )
        )
        if unchecked:  # our check is down: the user did nothing wrong, so nothing counts towards a ban
            raise PromptRejected(
                verdict.message
                or "I can't check prompts right now, so I can't start this. Please try again soon.",
                verdict.categories,
                "moderation_unavailable",
            )
        message = verdict.message or "I can't make images of that. Please change your prompt."
        banned = await self._maybe_auto_ban(owner, requester)
        if banned:
            message += " " + banned
        raise PromptRejected(message, verdict.categories, verdict.reason_code or "blocked")

    async def _maybe_auto_ban(self, owner: str, requester: Requester) -> str:
        """Ban after too many refusals within the window, where they happened (this community, or private
        chats); returns the sentence that tells the user so ("" when no ban)."""
        rules = self.settings.privileges
        if not rules.refusals_before_ban:
            return ""
        community = community_of(requester)
        count = await self.bans.count_refusal(owner, rules.refusal_window_s, scope_of(community))
        if count < rules.refusals_before_ban:
            return ""
        reason = f"{count} refused prompts within {rules.refusal_window_s // 60} min"
        ban = await self.bans.ban(
            owner, reason, by="system", duration_s=rules.auto_ban_s, scope=scope_of(community)
        )
        await self.bans.clear_refusals(owner, ban.scope)
        span = format_duration(rules.auto_ban_s)
        name = requester.display_name or owner
        await self._notify(requester, f"Automatic ban: {name} ({owner}) for {span} ({reason}).")
        await self.audit.record(
            AuditEntry(
                actor="system",
                action=AuditAction.AUTO_BAN,
                target=owner,
                reason=reason,
                community=community,
                details={"duration_s": str(rules.auto_ban_s), "scope": ban.scope},
                target_name=requester.display_name,
            )
        )
        where = "here" if community else "in private chats with me"
        return (
            f"That's {count} refused prompts within {rules.refusal_window_s // 60} min, so you can't make "
            f"images {where} for {span}."
        )

    async def _notify(self, requester: Requester, text: str) -> None:
        """Post a notice to the community's log channel, if it has one (delivered like a result, once)."""
        policy = await self.communities.policy(community_of(requester))
        if policy.log_channel is None:
            return
        notice = ResultEvent(
            kind=EventKind.NOTICE,
            request_id=new_request_id(),
            message=text,
            requester=requester.model_copy(update={"chat_id": policy.log_channel}),
            reply_to={"chat_id": policy.log_channel, "channel_id": policy.log_channel},
        )
        await self.events.publish(notice)

    async def check_headroom(self, requester: Requester, images: int) -> None:
        """QuotaExceeded (audited like a refused reservation) when `images` more don't fit; reserves nothing."""
        try:
            await self.quotas.check_headroom(requester, images)
        except QuotaExceeded as exc:
            await self.tally.refusal("quota", requester)
            await self.audit.record(
                AuditEntry(
                    actor="system",
                    action=AuditAction.QUOTA_REFUSED,
                    target=owner_id(requester),
                    reason=exc.message,
                    community=community_of(requester),
                    target_name=requester.display_name,
                )
            )
            raise

    async def reserve(self, request: GenerationRequest, queue: str) -> float:
        """Refuse a request over its tier's work limit, then reserve the quota (and the paid budget for the
        cloud queue); returns the fair-queue score."""
        cost = paid_quote(self.settings.openai, request).total_usd if queue == c.QUEUE_CLOUD else 0.0
        known = await self.quotas.limits_for(request.requester)  # one read for the three uses below
        limits = known[1]
        try:
            await self.quotas.check_cost(request, known)
            await self.quotas.reserve(
                request.request_id, request.requester, request.n, cost, request.cost, known=known
            )
        except QuotaExceeded as exc:
            await self._refused(request, AuditAction.QUOTA_REFUSED, exc.message)
            raise
        except InvalidRequest as exc:
            if exc.field == "cost":
                await self._refused(request, AuditAction.COST_REFUSED, exc.message)
            raise
        try:
            return await self.fair.score(queue, owner_id(request.requester), request.n, limits.weight)
        except BaseException:
            await self.quotas.refund(request.request_id)
            raise

    async def _refused(self, request: GenerationRequest, action: AuditAction, message: str) -> None:
        kind = "cost" if action is AuditAction.COST_REFUSED else "quota"
        await self.tally.refusal(kind, request.requester)
        await self.audit.record(
            AuditEntry(
                actor="system",
                action=action,
                target=owner_id(request.requester),
                reason=message,
                community=community_of(request.requester),
                target_name=request.requester.display_name,
            )
        )
