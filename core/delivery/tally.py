"""One UTC day's numbers in Redis, counted where the process's Prometheus metrics are (core.metrics), so
`/admin stats` and a Grafana dashboard tell the same story.

Per scope — "all" (the whole bot) and the community a request was made in — and per day: a hash of counts (jobs
by outcome, images delivered, refusals by kind, paid spend, how many durations each stage saw), a sorted set of
jobs per user, and for each stage (queue_wait, model, store, delivery) a uniform random sample of at most
STATS_SAMPLE_KEPT durations (reservoir sampling, in one Lua script), from which core.governance.stats reads
p50/p95. Everything expires after settings.retention.stats_days.

The writer lives in the delivery layer because the last stage is measured here (EventConsumer), and every layer
above — admission's refusals, the worker's jobs — can reach it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from redis.asyncio import Redis

from core import metrics
from core.keys import STATS_KEY, STATS_SAMPLE_KEPT, STATS_STAGE_KEY, STATS_TTL_S, STATS_USERS_KEY
from core.models.request import Requester
from core.models.result import ResultEvent

log = logging.getLogger(__name__)

ALL = "all"
STAGES = ("queue_wait", "model", "store", "delivery")
# ResultEvent.timings names → stage names (the worker's "queued" is the queue wait)
TIMED_STAGES = (("queue_wait", "queued"), ("model", "model"), ("store", "store"))
JOB_FIELD = "jobs:"  # + outcome (done, failed, refused, cancelled)
REFUSAL_FIELD = "refused:"  # + kind (quota, cost, prompt, banned, image…)
SAMPLED_FIELD = "sampled:"  # + stage: how many durations the stage saw (the reservoir's n)
IMAGES_FIELD = "images"
CACHED_FIELD = "cached"
SPEND_FIELD = "spend_units"  # paid spend in 1/10000 USD

# KEYS: the day's hash, the stage's sample list. ARGV: the count field, the value, a uniform random number in
# [0, 1), how many to keep, ttl. Algorithm R: the n-th value replaces a kept one with probability kept/n.
_SAMPLE = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local kept = tonumber(ARGV[4])
if n <= kept then
  redis.call('RPUSH', KEYS[2], ARGV[2])
else
  local j = math.floor(tonumber(ARGV[3]) * n)
  if j < kept and j < redis.call('LLEN', KEYS[2]) then redis.call('LSET', KEYS[2], j, ARGV[2]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return n
"""


def utc_day(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y%m%d")


def scopes_of(requester: Requester) -> tuple[str, ...]:
    """Where a request counts: the whole bot, and its community when it was made in one."""
    if requester.community_id:
        return ALL, f"{requester.platform}:{requester.community_id}"
    return (ALL,)


def owner_of(requester: Requester) -> str:
    return f"{requester.platform}:{requester.user_id}"


class DailyTally:
    def __init__(
        self,
        redis: Redis,
        ttl_s: int = STATS_TTL_S,
        now: Callable[[], float] = time.time,
        kept: int = STATS_SAMPLE_KEPT,
    ) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.now = now
        self.kept = kept
        self._sample = redis.register_script(_SAMPLE)

    async def job(self, event: ResultEvent, spend_usd: float = 0.0) -> None:
        """A job ended (`event` is its terminal event): its outcome, images, user, stage times and paid spend."""
        day, owner = utc_day(self.now()), owner_of(event.requester)
        scopes = scopes_of(event.requester)
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                counts = STATS_KEY.format(scope=scope, day=day)
                users = STATS_USERS_KEY.format(scope=scope, day=day)
                pipe.hincrby(counts, JOB_FIELD + event.kind.value, 1)
                if event.images:
                    pipe.hincrby(counts, IMAGES_FIELD, len(event.images))
                if event.cached:
                    pipe.hincrby(counts, CACHED_FIELD, 1)
                if spend_usd > 0:
                    pipe.hincrby(counts, SPEND_FIELD, round(spend_usd * 10_000))
                pipe.expire(counts, self.ttl_s)
                pipe.zincrby(users, 1, owner)
                pipe.expire(users, self.ttl_s)
            await pipe.execute()
        for stage, key in TIMED_STAGES:
            if key in event.timings:
                await self._stage(stage, event.timings[key], scopes, day)

    async def refusal(self, kind: str, requester: Requester) -> None:
        """A request refused before it was queued (quota, cost, prompt, ban, pause), by admission's kinds
        (/metrics counts every refusal by reason code in the service)."""
        day = utc_day(self.now())
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes_of(requester):
                counts = STATS_KEY.format(scope=scope, day=day)
                pipe.hincrby(counts, REFUSAL_FIELD + kind, 1)
                pipe.expire(counts, self.ttl_s)
            await pipe.execute()

    async def delivered(self, event: ResultEvent) -> None:
        """A terminal event reached its chat: the delivery stage, from the worker's publishing to the reply."""
        seconds = max(0.0, self.now() - event.created_at)
        metrics.STAGE_SECONDS.labels(stage="delivery").observe(seconds)
        await self._stage("delivery", seconds, scopes_of(event.requester), utc_day(self.now()))

    async def _stage(self, stage: str, seconds: float, scopes: tuple[str, ...], day: str) -> None:
        for scope in scopes:
            await self._sample(
                keys=[
                    STATS_KEY.format(scope=scope, day=day),
                    STATS_STAGE_KEY.format(scope=scope, day=day, stage=stage),
                ],
                args=[SAMPLED_FIELD + stage, f"{seconds:.4f}", random.random(), self.kept, self.ttl_s],
            )
