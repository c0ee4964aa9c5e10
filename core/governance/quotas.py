"""Quotas: reserved atomically before a job is queued, committed when it delivers, refunded otherwise.

Limits (per tier, None = unlimited): images per day and per hour, jobs in flight, and the work of one request
(megapixel-steps, checked before anything is reserved); per community images per day; for the whole bot a
daily budget for paid (OpenAI) images. Days and hours are UTC.

One Lua script checks every limit and takes the reservation in one step, so 100 concurrent requests against 10
remaining images admit exactly 10. A reservation is a hash keyed by request id and moves reserved → committed or
reserved → refunded exactly once, so nothing is charged twice and nothing is refunded twice; reserving the same
request id again (a redelivered command) charges nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from core import constants as c
from core.errors import InvalidRequest, QuotaExceeded
from core.governance.quota_scripts import CHARGE, RESERVE, SETTLE
from core.keys import (
    BUDGET_KEY,
    INFLIGHT_KEY,
    OVERRIDE_KEY,
    RESERVATION_KEY,
    TIER_KEY,
    USAGE_DAY_KEY,
    USAGE_DAY_TTL_S,
    USAGE_HOUR_KEY,
    USAGE_HOUR_TTL_S,
)
from core.models.pricing import Quote, quote
from core.models.request import GenerationRequest, Requester
from core.settings import OpenAISettings, QuotaSettings, TierLimits

Limits = tuple[str, TierLimits]  # a requester's tier and its limits (with an admin's daily override)

# A job that waited longer than STALE_JOB_S is reported and settled when a worker takes it; if no worker runs at
# all, its in-flight slot lapses an hour later so the user isn't locked out meanwhile.
INFLIGHT_LAPSE_S = c.STALE_JOB_S + 3600

UNLIMITED = -1
# Paid spend is counted in hundredths of a cent, so a $0.011 image is charged 110, not rounded to a cent.
SPEND_UNITS_PER_USD = 10_000
_LIMIT_NAMES = {1: "day", 2: "hour", 3: "in_flight", 4: "community", 5: "budget"}


@dataclass(frozen=True)
class QuotaStatus:
    tier: str
    limits: TierLimits
    used_today: int
    used_this_hour: int
    in_flight: int
    community_used_today: int | None
    community_limit: int | None
    resets_in_s: float  # until the daily counters reset
    hour_resets_in_s: float | None = None  # until the hourly counter resets

    def describe(self) -> str:
        def part(used: int, limit: int | None, label: str) -> str:
            return f"{used} {label}" if limit is None else f"{used} of {limit} {label}"

        hour_reset = ""
        if self.hour_resets_in_s is not None and self.limits.images_per_hour is not None:
            hour_reset = f" (resets in {format_duration(self.hour_resets_in_s)})"
        lines = [
            f"Tier: {self.tier}",
            f"Today: {part(self.used_today, self.limits.images_per_day, 'images')}"
            f" (resets in {format_duration(self.resets_in_s)})",
            f"This hour: {part(self.used_this_hour, self.limits.images_per_hour, 'images')}{hour_reset}",
            f"Running now: {part(self.in_flight, self.limits.jobs_in_flight, 'jobs')}",
        ]
        if self.limits.max_request_cost is not None:
            lines.append(
                f"Per request: up to {self.limits.max_request_cost:g} megapixel-steps "
                "(images × width × height × steps / 1,000,000)"
            )
        if self.community_limit is not None and self.community_used_today is not None:
            lines.append(
                f"This community today: {self.community_used_today} of {self.community_limit} images"
            )
        return "\n".join(lines)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def owner_id(requester: Requester) -> str:
    return f"{requester.platform}:{requester.user_id}"


def cost_refusal(request: GenerationRequest, tier: str, limit: float) -> InvalidRequest:
    """Why a request is too much work for one go, and what would fit."""
    images = f"{request.n} image{'s' if request.n != 1 else ''}"
    steps = f"{request.denoising_steps} step{'s' if request.denoising_steps != 1 else ''}"
    if request.denoising_steps != request.steps:
        steps += f" (of {request.steps}, at strength {request.strength:g})"
    hints = []
    per_image = request.cost / request.n
    if request.n > 1 and per_image <= limit:
        hints.append(f"--n {math.floor(limit / per_image)}")
    steps_that_fit = math.floor(limit * 1_000_000 / (request.width * request.height * request.n))
    if request.denoising_steps == request.steps and steps_that_fit >= 1:
        hints.append(f"--steps {steps_that_fit}")
    example = f" For example, {' or '.join(hints)} would fit." if hints else ""
    return InvalidRequest(
        "cost",
        f"That's more work than one request may take on the {tier} tier: {images} × "
        f"{request.width}×{request.height} × {steps} = {request.cost:.1f} megapixel-steps, over the limit of "
        f"{limit:g}. Please ask for fewer images (--n), fewer steps (--steps) or a smaller size (--size)."
        f"{example}",
    )


class QuotaService:
    def __init__(self, redis: Redis, settings: QuotaSettings, now: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.settings = settings
        self.now = now
        self._reserve = redis.register_script(RESERVE)
        self._settle = redis.register_script(SETTLE)
        self._charge = redis.register_script(CHARGE)

    # -- periods ---------------------------------------------------------------------------------------------

    def _moment(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    def _day(self) -> str:
        return self._moment().strftime("%Y%m%d")

    def _hour(self) -> str:
        return self._moment().strftime("%Y%m%d%H")

    def seconds_to_midnight(self) -> float:
        moment = self._moment()
        midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - moment).total_seconds()

    def seconds_to_next_hour(self) -> float:
        moment = self._moment()
        return (
            moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - moment
        ).total_seconds()

    # -- tiers -----------------------------------------------------------------------------------------------

    async def tier_of(self, requester: Requester) -> str:
        return self._tier(requester, await self.redis.get(TIER_KEY.format(owner=owner_id(requester))))

    def _tier(self, requester: Requester, assigned: bytes | None) -> str:
        """The requester's tier, given the one an admin assigned (TIER_KEY's value)."""
        if assigned is not None and assigned.decode() in self.settings.tiers:
            return str(assigned.decode())
        by_role = [
            self.settings.role_tiers[role] for role in requester.roles if role in self.settings.role_tiers
        ]
        if by_role:
            return max(by_role, key=lambda tier: self.settings.tiers[tier].weight)
        return self.settings.default_tier

    async def set_tier(self, owner: str, tier: str | None) -> None:
        if tier is None:
            await self.redis.delete(TIER_KEY.format(owner=owner))
            return
        if tier not in self.settings.tiers:
            raise InvalidRequest(
                "tier", f"Unknown tier “{tier}”. Tiers: {', '.join(sorted(self.settings.tiers))}."
            )
        await self.redis.set(TIER_KEY.format(owner=owner), tier)

    async def set_daily_override(self, owner: str, images_per_day: int | None) -> None:
        """An admin's per-user daily limit, replacing the tier's (None removes it)."""
        key = OVERRIDE_KEY.format(owner=owner)
        if images_per_day is None:
            await self.redis.delete(key)
        elif images_per_day < 0:
            raise InvalidRequest("quota", "A daily quota must be 0 or more images.")
        else:
            await self.redis.set(key, images_per_day)

    async def limits_for(self, requester: Requester) -> Limits:
        owner = owner_id(requester)
        assigned, override = await self.redis.mget(
            [TIER_KEY.format(owner=owner), OVERRIDE_KEY.format(owner=owner)]
        )
        return self._limits(requester, assigned, override)

    def _limits(self, requester: Requester, assigned: bytes | None, override: bytes | None) -> Limits:
        tier = self._tier(requester, assigned)
        limits = self.settings.tiers[tier]
        if override is not None:
            limits = limits.model_copy(update={"images_per_day": int(override)})
        return tier, limits

    async def weight_of(self, requester: Requester) -> float:
        return self.settings.tiers[await self.tier_of(requester)].weight

    # -- reserve / commit / refund ---------------------------------------------------------------------------

    async def check_cost(self, request: GenerationRequest, known: Limits | None = None) -> None:
        """Refuse (InvalidRequest "cost") a request whose work is over its owner's per-request limit.

        Called before `reserve`, so a refused request takes nothing. `known`: the owner's `limits_for`, when
        the caller has just read them."""
        if not self.settings.enabled:
            return
        tier, limits = known or await self.limits_for(request.requester)
        if limits.max_request_cost is not None and request.cost > limits.max_request_cost:
            raise cost_refusal(request, tier, limits.max_request_cost)

    async def reserve(
        self,
        request_id: str,
        requester: Requester,
        images: int,
        cost_usd: float = 0.0,
        work: float = 0.0,
        known: Limits | None = None,
    ) -> None:
        """Take `images` from every limit that applies, or raise QuotaExceeded saying which and until when.

        `work` (the request's megapixel-steps) is kept in the reservation for operators; no limit counts it.
        `known`: the requester's `limits_for`, when the caller has just read them."""
        if not self.settings.enabled:
            return
        tier, limits = known or await self.limits_for(requester)
        owner, day = owner_id(requester), self._day()
        community = requester.community_id
        keys = [
            USAGE_DAY_KEY.format(scope="user", owner=owner, day=day),
            USAGE_HOUR_KEY.format(owner=owner, hour=self._hour()),
            INFLIGHT_KEY.format(owner=owner),
            USAGE_DAY_KEY.format(
                scope="community", owner=f"{requester.platform}:{community or '-'}", day=day
            ),
            BUDGET_KEY.format(day=day),
            RESERVATION_KEY.format(request_id=request_id),
        ]
        community_limit = self.settings.community_images_per_day if community else None
        budget_units = spend_units(self.settings.openai_daily_budget_usd)
        args: list[str | int | float] = [
            images, request_id,
            _limit(limits.images_per_day), _limit(limits.images_per_hour), _limit(limits.jobs_in_flight),
            _limit(community_limit), budget_units, spend_units(cost_usd),
            USAGE_DAY_TTL_S, USAGE_HOUR_TTL_S, self.now(), self.now() + INFLIGHT_LAPSE_S, round(work, 3),
        ]  # fmt: skip
        code, used, limit = (int(value) for value in await self._reserve(keys=keys, args=args))
        if code == 6:
            raise InvalidRequest(
                "request", "That request has already ended (cancelled or failed); please start a new one."
            )
        if code:
            raise self._refusal(_LIMIT_NAMES[code], tier, used, limit, images)

    async def check_headroom(self, requester: Requester, images: int) -> None:
        """Raise QuotaExceeded, as `reserve` would, when `images` more don't fit now; reserves nothing.

        For checks before work that costs something (downloading an upload); `reserve` still decides, atomically.
        """
        if not self.settings.enabled:
            return
        status = await self.status(requester)
        limits = status.limits
        for which, used, limit, more in (
            ("day", status.used_today, limits.images_per_day, images),
            ("hour", status.used_this_hour, limits.images_per_hour, images),
            ("in_flight", status.in_flight, limits.jobs_in_flight, 1),
            ("community", status.community_used_today or 0, status.community_limit, images),
        ):
            if limit is not None and used + more > limit:
                raise self._refusal(which, status.tier, used, limit, images)

    async def charge_fallback(self, request_id: str, cost_usd: float) -> bool:
        """Charge the paid budget for a job a local worker handed to OpenAI; False when the budget is used up.

        Refunded with the rest of the reservation if the paid job fails too.
        """
        if not self.settings.enabled:
            return True
        keys = [RESERVATION_KEY.format(request_id=request_id), BUDGET_KEY.format(day=self._day())]
        args = [spend_units(cost_usd), spend_units(self.settings.openai_daily_budget_usd), USAGE_DAY_TTL_S]
        return int(await self._charge(keys=keys, args=args)) != 0

    async def commit(self, request_id: str, delivered: int, requested: int) -> bool:
        """The job delivered `delivered` of `requested` images: keep those, give the rest back."""
        return await self._settle_as(request_id, max(0, requested - delivered), "committed")

    async def refund(self, request_id: str) -> bool:
        """Give everything back (failure, refusal, cancel). True when this call did it."""
        return await self._settle_as(request_id, 1_000_000, "refunded")

    async def _settle_as(self, request_id: str, give_back: int, state: str) -> bool:
        result = await self._settle(
            keys=[RESERVATION_KEY.format(request_id=request_id)], args=[give_back, state, request_id]
        )
        return bool(result)

    async def status(self, requester: Requester) -> QuotaStatus:
        owner, day = owner_id(requester), self._day()
        community_key = USAGE_DAY_KEY.format(
            scope="community", owner=f"{requester.platform}:{requester.community_id}", day=day
        )
        assigned, override, used_day, used_hour, raw_community = await self.redis.mget(
            [
                TIER_KEY.format(owner=owner),
                OVERRIDE_KEY.format(owner=owner),
                USAGE_DAY_KEY.format(scope="user", owner=owner, day=day),
                USAGE_HOUR_KEY.format(owner=owner, hour=self._hour()),
                community_key,
            ]
        )
        in_flight = await self.redis.zcount(INFLIGHT_KEY.format(owner=owner), self.now(), "+inf")
        tier, limits = self._limits(requester, assigned, override)
        community_used = None
        community_limit = None
        if requester.community_id:
            community_limit = self.settings.community_images_per_day
            community_used = int(raw_community or 0)
        return QuotaStatus(
            tier,
            limits,
            int(used_day or 0),
            int(used_hour or 0),
            int(in_flight),
            community_used,
            community_limit,
            self.seconds_to_midnight(),
            self.seconds_to_next_hour(),
        )

    def _refusal(self, which: str, tier: str, used: int, limit: int, asked: int) -> QuotaExceeded:
        left = max(0, limit - used)
        want = f"{asked} image{'s' if asked != 1 else ''}"
        if which == "day":
            wait = self.seconds_to_midnight()
            text = (
                f"You've used {used} of your {limit} images for today ({tier} tier), so {want} won't fit "
                f"({left} left). It resets in {format_duration(wait)}."
            )
        elif which == "hour":
            wait = self.seconds_to_next_hour()
            text = (
                f"You've used {used} of your {limit} images this hour ({left} left, you asked for {want}). "
                f"It resets in {format_duration(wait)}."
            )
        elif which == "in_flight":
            wait = 30.0
            text = (
                f"You already have {used} job{'s' if used != 1 else ''} running, the most your {tier} tier "
                "allows at once. Please wait for one to finish."
            )
        elif which == "community":
            wait = self.seconds_to_midnight()
            text = (
                f"This community has used {used} of its {limit} images for today ({left} left). "
                f"It resets in {format_duration(wait)}."
            )
        else:
            wait = self.seconds_to_midnight()
            text = (
                "Today's budget for the paid image service is used up, and no local generator is free. "
                f"Please try again later (it resets in {format_duration(wait)})."
            )
        return QuotaExceeded(text, retry_after=wait)


def paid_quote(openai: OpenAISettings, request: GenerationRequest) -> Quote:
    """What `request` costs when OpenAI draws it, from the price table in settings (model × quality × size)."""
    return quote(openai.prices, openai.model, openai.quality, request)


def spend_units(usd: float) -> int:
    """US dollars as the whole units the budget counts (SPEND_UNITS_PER_USD)."""
    return round(usd * SPEND_UNITS_PER_USD)


def _limit(value: int | None) -> int:
    return UNLIMITED if value is None else value
