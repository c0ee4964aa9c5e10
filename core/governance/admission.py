"""Who may queue what, checked before any GPU time is spent: bans, paused communities, the prompt, the quota.

Every refusal is written to the audit log. Repeated prompt refusals within a window give an automatic temporary
ban (settings.privileges.refusals_before_ban), also audited.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from core import constants as c
from core.delivery.events import EventPublisher
from core.errors import InvalidRequest, NotAllowed, PromptRejected, QuotaExceeded
from core.governance.audit import AuditEntry, AuditLog
from core.governance.bans import BanList
from core.governance.community import CommunityPolicy, CommunityStore, community_key
from core.governance.quotas import QuotaService, owner_id
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
        self.audit = AuditLog(redis)
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
            await self.audit.record(AuditEntry("system", "banned_user_refused", owner, community=community))
            raise
        if await self.communities.is_paused(community):
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
        await self.audit.record(
            AuditEntry(
                "system",
                "prompt_unchecked" if unchecked else "prompt_refused",
                owner,
                reason=verdict.reason_code,
                community=community_of(requester),
                details={"categories": ",".join(verdict.categories), "normalized": verdict.normalized[:500]},
            )
        )
        if unchecked:  # our check is down: the user did nothing wrong, so nothing counts towards a ban
            raise PromptRejected(
                verdict.message
                or "I can't check prompts right now, so I can't start this. Please try again soon.",
                verdict.categories,
                "moderation_unavailable",
            )
        await self._maybe_auto_ban(owner, requester)
        message = verdict.message or "I can't make images of that. Please change your prompt."
        raise PromptRejected(message, verdict.categories, verdict.reason_code or "blocked")

    async def _maybe_auto_ban(self, owner: str, requester: Requester) -> None:
        rules = self.settings.privileges
        if not rules.refusals_before_ban:
            return
        count = await self.bans.count_refusal(owner, rules.refusal_window_s)
        if count < rules.refusals_before_ban:
            return
        reason = f"{count} refused prompts within {rules.refusal_window_s // 60} min"
        await self.bans.ban(
            owner, reason, by="system", duration_s=rules.auto_ban_s, scope=community_of(requester)
        )
        await self.bans.clear_refusals(owner)
        await self._notify(requester, f"Automatic ban: {owner} for {rules.auto_ban_s // 60} min ({reason}).")
        await self.audit.record(
            AuditEntry(
                "system",
                "auto_ban",
                owner,
                reason=reason,
                community=community_of(requester),
                details={"duration_s": str(rules.auto_ban_s)},
            )
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

    async def reserve(self, request: GenerationRequest, queue: str) -> float:
        """Refuse a request over its tier's work limit, then reserve the quota (and the paid budget for the
        cloud queue); returns the fair-queue score."""
        cost = request.n * self.settings.openai.cost_per_image_usd if queue == c.QUEUE_CLOUD else 0.0
        try:
            await self.quotas.check_cost(request)
            await self.quotas.reserve(request.request_id, request.requester, request.n, cost, request.cost)
        except QuotaExceeded as exc:
            await self._refused(request, "quota_refused", exc.message)
            raise
        except InvalidRequest as exc:
            if exc.field == "cost":
                await self._refused(request, "cost_refused", exc.message)
            raise
        try:
            weight = await self.quotas.weight_of(request.requester)
            return await self.fair.score(queue, owner_id(request.requester), request.n, weight)
        except BaseException:
            await self.quotas.refund(request.request_id)
            raise

    async def _refused(self, request: GenerationRequest, action: str, message: str) -> None:
        await self.audit.record(
            AuditEntry(
                "system",
                action,
                owner_id(request.requester),
                reason=message,
                community=community_of(request.requester),
            )
        )
