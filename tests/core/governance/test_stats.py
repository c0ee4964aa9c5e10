"""The day's numbers behind /admin stats: counted by core.delivery.tally, read by core.governance.stats, against a
real Redis; who sees which scope."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from core.delivery.tally import ALL, DailyTally
from core.errors import InvalidRequest, NotAllowed
from core.governance.stats import StatsReader, day_of, describe, percentile
from core.keys import STATS_KEY, STATS_STAGE_KEY, STATS_TTL_S
from core.models.privileges import Privilege
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from core.settings import RetentionSettings
from tests.pipeline_fixture import Pipeline

NOON = 1_764_590_400.0  # 2025-12-01 12:00 UTC
GROUP, OTHER = "-100", "-200"


def member(user_id: str, community: str | None = GROUP, privilege: Privilege = Privilege.USER) -> Requester:
    return Requester(
        platform=Platform.TELEGRAM,
        user_id=user_id,
        chat_id=community or user_id,
        community_id=community,
        privilege=privilege,
    )


def ended(
    requester: Requester, kind: EventKind = EventKind.DONE, images: int = 1, **timings: float
) -> ResultEvent:
    stored = tuple(
        StoredImage(key=f"images/aa/{i}.png", url="http://x/", width=64, height=64, index=i)
        for i in range(images)
    )
    return ResultEvent(
        kind=kind,
        request_id="abcdefghijklmnop",
        requester=requester,
        images=stored if kind is EventKind.DONE else (),
        timings=timings,
        created_at=NOON - 0.25,
    )


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0


async def test_jobs_refusals_stages_and_users_are_counted_per_community_and_for_the_whole_bot(
    redis: aioredis.Redis,
) -> None:
    tally = DailyTally(redis, now=lambda: NOON)
    alice, bob, carol_elsewhere = member("1"), member("2"), member("3", OTHER)
    for model_s in (0.1, 0.2, 0.3, 0.4, 2.0):
        await tally.job(ended(alice, images=2, queued=1.0, model=model_s, store=0.05))
    await tally.job(ended(bob, EventKind.FAILED, queued=0.5))
    await tally.job(ended(carol_elsewhere, images=4, model=9.0), spend_usd=0.168)
    await tally.refusal("quota", bob)
    await tally.refusal("prompt", carol_elsewhere)
    await tally.delivered(ended(alice))

    reader, day = StatsReader(redis), day_of(NOON)
    here = await reader.day("telegram:-100", day)
    assert here.jobs == {"done": 5, "failed": 1} and here.images == 10
    assert here.refusals == {"quota": 1}
    assert here.busiest == [("telegram:1", 5), ("telegram:2", 1)]
    model = here.stages["model"]
    assert model is not None and (model.seen, model.p50, model.p95) == (5, 0.3, 2.0)
    queue_wait = here.stages["queue_wait"]
    assert queue_wait is not None and queue_wait.seen == 6 and queue_wait.p50 == 1.0
    delivery = here.stages["delivery"]
    assert delivery is not None and delivery.p50 == 0.25
    assert here.spend_usd == 0

    everywhere = await reader.day(ALL, day)
    assert everywhere.jobs == {"done": 6, "failed": 1} and everywhere.images == 14
    assert everywhere.refusals == {"quota": 1, "prompt": 1}
    assert everywhere.spend_usd == pytest.approx(0.168)
    assert (await redis.ttl(STATS_KEY.format(scope=ALL, day=day))) == pytest.approx(STATS_TTL_S, abs=5)

    text = "\n".join(
        "".join(str(part) if isinstance(part, str) else part.plain() for part in line)
        for line in describe(here)
    )
    assert "Jobs: 6 (5 done, 1 failed, 0 refused, 0 cancelled); 10 images" in text
    assert "model: p50 300 ms, p95 2.0 s (5 jobs)" in text
    assert "delivery: p50 250 ms" in text and "store: p50 50 ms" in text
    assert "Refused: quota 1" in text and "Busiest: 1 5, 2 1" in text


async def test_the_stage_sample_stays_bounded_and_uniform(redis: aioredis.Redis) -> None:
    tally = DailyTally(redis, now=lambda: NOON, kept=50)
    alice = member("1", community=None)
    for i in range(1000):
        await tally.job(ended(alice, model=float(i)))
    sample = await redis.lrange(STATS_STAGE_KEY.format(scope=ALL, day=day_of(NOON), stage="model"), 0, -1)
    values = sorted(float(v) for v in sample)
    assert len(values) == 50
    assert values[-1] > 500  # later values replace earlier ones, not just the first 50 kept
    figures = (await StatsReader(redis).day(ALL, day_of(NOON))).stages["model"]
    assert figures is not None and figures.seen == 1000
    assert 250 < figures.p50 < 750  # a uniform sample's median is near the true one (499.5)


async def test_moderators_see_their_community_and_owners_the_whole_bot(pipeline: Pipeline) -> None:
    admin, redis = pipeline.runtime.admin, pipeline.runtime.redis
    tally = DailyTally(redis)
    await tally.job(ended(member("1"), images=3, model=0.5))
    await tally.job(ended(member("2", OTHER), images=1, model=0.5))
    mod = member("7", privilege=Privilege.MOD)
    owner = member("9", privilege=Privilege.OWNER)

    seen_by_mod = (await admin.execute("stats", mod)).text
    assert seen_by_mod.startswith("Stats for this community,") and "Jobs: 1 (1 done" in seen_by_mod
    seen_by_owner = (await admin.execute("stats", owner)).text
    assert seen_by_owner.startswith("Stats for the whole bot,") and "Jobs: 2 (2 done" in seen_by_owner
    assert "Jobs: 1 (1 done" in (await admin.execute("stats here", owner)).text
    assert "Jobs: 0 (0 done" in (await admin.execute("stats yesterday", mod)).text

    with pytest.raises(NotAllowed):
        await admin.execute("stats", member("1"))
    with pytest.raises(InvalidRequest, match="works in a group"):
        await admin.execute("stats", member("7", community=None, privilege=Privilege.MOD))
    with pytest.raises(InvalidRequest, match="stats \\[here\\] \\[yesterday\\]"):
        await admin.execute("stats lastweek", mod)


def test_stats_live_as_long_as_the_retention_says() -> None:
    assert RetentionSettings(stats_days=3).stats_s == 3 * 86400
