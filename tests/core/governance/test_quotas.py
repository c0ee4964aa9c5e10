"""Quotas against a real Redis: atomic reservation under concurrency, refunds, partial commits, midnight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from core.errors import QuotaExceeded
from core.governance.quotas import QuotaService
from core.models.request import Platform, Requester
from core.settings import QuotaSettings, TierLimits

ALICE = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="10", community_id="-100")


def settings(**tier: int | None) -> QuotaSettings:
    limits = {"images_per_day": 10, "images_per_hour": None, "jobs_in_flight": None} | tier
    return QuotaSettings(tiers={"free": TierLimits(**limits)})  # type: ignore[arg-type]


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.value = moment.timestamp()

    def __call__(self) -> float:
        return self.value


async def test_100_concurrent_requests_against_10_remaining_admit_exactly_10(redis: aioredis.Redis) -> None:
    quotas = QuotaService(redis, settings(images_per_day=10))
    results = await asyncio.gather(
        *(quotas.reserve(f"req{i:03d}", ALICE, 1) for i in range(100)), return_exceptions=True
    )
    admitted = [result for result in results if result is None]
    refused = [result for result in results if isinstance(result, QuotaExceeded)]
    assert len(admitted) == 10 and len(refused) == 90
    assert (await quotas.status(ALICE)).used_today == 10
    assert "10 of your 10 images for today" in refused[0].message
    assert refused[0].retry_after > 0


async def test_refund_after_failure_and_cancel_gives_images_back_once(redis: aioredis.Redis) -> None:
    quotas = QuotaService(redis, settings(images_per_day=8, jobs_in_flight=2))
    await quotas.reserve("a", ALICE, 4)
    await quotas.reserve("b", ALICE, 4)
    with pytest.raises(QuotaExceeded, match="won't fit"):
        await quotas.reserve("c", ALICE, 1)
    assert await quotas.refund("a") is True  # the job failed
    assert await quotas.refund("a") is False  # a second refund changes nothing
    assert await quotas.commit("a", delivered=4, requested=4) is False  # nor does a late commit
    status = await quotas.status(ALICE)
    assert (status.used_today, status.in_flight) == (4, 1)
    await quotas.reserve("c", ALICE, 4)
    assert (await quotas.status(ALICE)).used_today == 8


async def test_a_redelivered_request_is_not_charged_twice(redis: aioredis.Redis) -> None:
    quotas = QuotaService(redis, settings(images_per_day=10))
    await quotas.reserve("same", ALICE, 4)
    await quotas.reserve("same", ALICE, 4)
    assert (await quotas.status(ALICE)).used_today == 4


async def test_commit_keeps_delivered_images_and_returns_refused_ones(redis: aioredis.Redis) -> None:
    quotas = QuotaService(redis, settings(images_per_day=10, jobs_in_flight=1))
    await quotas.reserve("grid", ALICE, 4)
    with pytest.raises(QuotaExceeded, match="1 job running"):
        await quotas.reserve("next", ALICE, 1)
    assert await quotas.commit("grid", delivered=3, requested=4)  # one image failed the safety check
    status = await quotas.status(ALICE)
    assert (status.used_today, status.in_flight) == (3, 0)


async def test_daily_counters_reset_at_utc_midnight(redis: aioredis.Redis) -> None:
    clock = Clock(datetime(2026, 11, 25, 23, 59, 30, tzinfo=UTC))
    quotas = QuotaService(redis, settings(images_per_day=2), now=clock)
    await quotas.reserve("late1", ALICE, 2)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve("late2", ALICE, 1)
    assert refused.value.retry_after == pytest.approx(30, abs=1)
    assert "resets in 30 s" in refused.value.message
    clock.value += 60  # 00:00:30 the next day
    await quotas.reserve("early", ALICE, 2)
    assert (await quotas.status(ALICE)).used_today == 2


async def test_hourly_community_and_paid_budget_limits_name_themselves(redis: aioredis.Redis) -> None:
    hourly = QuotaService(redis, settings(images_per_day=None, images_per_hour=4))
    await hourly.reserve("h1", ALICE, 4)
    with pytest.raises(QuotaExceeded, match="this hour"):
        await hourly.reserve("h2", ALICE, 1)

    community = QuotaService(
        redis,
        QuotaSettings(
            tiers={"free": TierLimits(images_per_day=None, images_per_hour=None, jobs_in_flight=None)},
            community_images_per_day=5,
            openai_daily_budget_usd=0.10,
        ),
    )
    bob = ALICE.model_copy(update={"user_id": "2", "community_id": "-200"})
    await community.reserve("c1", bob, 4)
    with pytest.raises(QuotaExceeded, match="This community has used 4 of its 5"):
        await community.reserve("c2", bob, 2)
    carol = ALICE.model_copy(update={"user_id": "3", "community_id": None})
    await community.reserve("paid1", carol, 2, cost_usd=0.08)
    with pytest.raises(QuotaExceeded, match="budget for the paid image service"):
        await community.reserve("paid2", carol, 1, cost_usd=0.04)
    await community.refund("paid1")
    await community.reserve("paid2", carol, 1, cost_usd=0.04)


async def test_tiers_by_assignment_and_role(redis: aioredis.Redis) -> None:
    quotas = QuotaService(redis, QuotaSettings(role_tiers={"patron": "supporter"}))
    assert await quotas.tier_of(ALICE) == "free"
    assert await quotas.tier_of(ALICE.model_copy(update={"roles": ("patron",)})) == "supporter"
    await quotas.set_tier("telegram:1", "unlimited")
    assert await quotas.tier_of(ALICE) == "unlimited"
    assert (await quotas.status(ALICE)).limits.images_per_day is None
    await quotas.set_daily_override("telegram:1", 3)
    assert (await quotas.limits_for(ALICE))[1].images_per_day == 3


async def test_an_in_flight_slot_that_was_never_settled_lapses_with_its_job(redis: aioredis.Redis) -> None:
    from core.governance.quotas import INFLIGHT_LAPSE_S

    clock = Clock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    quotas = QuotaService(redis, settings(images_per_day=None, jobs_in_flight=1), now=clock)
    await quotas.reserve("lost", ALICE, 1)  # its worker and its event were lost: never settled
    with pytest.raises(QuotaExceeded, match="1 job running"):
        await quotas.reserve("next", ALICE, 1)
    clock.value += INFLIGHT_LAPSE_S + 1
    await quotas.reserve("next", ALICE, 1)
    assert (await quotas.status(ALICE)).in_flight == 1


async def test_a_request_that_already_ended_is_not_charged_or_queued_again(redis: aioredis.Redis) -> None:
    from core.errors import InvalidRequest

    quotas = QuotaService(redis, settings(images_per_day=10))
    await quotas.reserve("once", ALICE, 2)
    await quotas.refund("once")  # cancelled
    with pytest.raises(InvalidRequest, match="already ended"):
        await quotas.reserve("once", ALICE, 2)
    assert (await quotas.status(ALICE)).used_today == 0


async def test_every_models_default_request_fits_the_free_tiers_cost_limit() -> None:
    from core.models.catalog import CATALOG
    from core.models.request import GenerationRequest
    from core.settings import LimitsSettings

    images = LimitsSettings().default_images
    limit = TierLimits().max_request_cost
    assert limit is not None
    for spec in CATALOG:
        request = GenerationRequest(
            request_id="r",
            prompt="a lighthouse",
            width=spec.native_width,
            height=spec.native_height,
            steps=spec.default_steps,
            guidance=spec.default_guidance,
            seeds=tuple(range(images)),
            model=spec.name,
            requester=ALICE,
        )
        assert request.cost <= limit, spec.name
    # …and the largest of them (SDXL: 4 × 1024×1024 × 30 steps) leaves little room to spare.
    assert limit < 4 * 1024 * 1024 * 31 / 1e6


async def test_a_refined_image_costs_only_the_steps_that_run_and_the_refusal_says_so(
    redis: aioredis.Redis,
) -> None:
    from core.errors import InvalidRequest
    from core.models.request import GenerationRequest, Mode

    quotas = QuotaService(
        redis, QuotaSettings(tiers={"free": TierLimits(images_per_day=None, max_request_cost=20)})
    )
    upscale = GenerationRequest(
        request_id="u",
        prompt="a lighthouse",
        width=2048,
        height=2048,
        steps=30,
        guidance=5.0,
        seeds=(1,),
        model="sdxl",
        mode=Mode.UPSCALE,
        source_image="public/abc.png",
        strength=0.3,
        requester=ALICE,
    )
    assert upscale.denoising_steps == 9
    assert upscale.cost == pytest.approx(37.75, abs=0.01)

    with pytest.raises(InvalidRequest) as refused:
        await quotas.check_cost(upscale)

    assert "1 image × 2048×2048 × 9 steps (of 30, at strength 0.3) = 37.7 megapixel-steps" in (
        refused.value.message
    )
    assert "over the limit of 20" in refused.value.message
    await quotas.check_cost(upscale.model_copy(update={"width": 1024, "height": 1024}))  # 9.4: fits
    assert "Per request: up to 20 megapixel-steps" in (await quotas.status(ALICE)).describe()
