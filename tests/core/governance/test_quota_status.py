"""/quota says when each limit resets, the hourly one included."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis

from core.governance.quotas import QuotaService
from core.models.request import Platform, Requester
from core.settings import QuotaSettings, TierLimits

ALICE = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="10")


async def test_quota_status_says_when_the_hourly_limit_resets(redis: aioredis.Redis) -> None:
    moment = datetime(2025, 3, 4, 14, 48, tzinfo=UTC).timestamp()
    limits = TierLimits(images_per_day=60, images_per_hour=24, jobs_in_flight=2)
    quotas = QuotaService(redis, QuotaSettings(tiers={"free": limits}), now=lambda: moment)
    await quotas.reserve("aaaaaaaaaaaaaaaa", ALICE, 4)
    lines = (await quotas.status(ALICE)).describe().splitlines()
    assert "This hour: 4 of 24 images (resets in 12 min)" in lines
    assert "Today: 4 of 60 images (resets in 9 h 12 min)" in lines


async def test_no_hourly_reset_is_shown_without_an_hourly_limit(redis: aioredis.Redis) -> None:
    limits = TierLimits(images_per_day=60, images_per_hour=None, jobs_in_flight=2)
    quotas = QuotaService(redis, QuotaSettings(tiers={"free": limits}))
    assert "This hour: 0 images" in (await quotas.status(ALICE)).describe().splitlines()
