"""Fair queueing: one user's flood cannot starve another; heavier tiers get a bigger share."""

from __future__ import annotations

import math
import random

import redis.asyncio as aioredis
from arq.connections import ArqRedis

from core import constants as c
from core.jobs.fairness import COST_PER_IMAGE, FairScheduler
from core.jobs.queue import JobQueue
from core.models.request import GenerationRequest, Platform, Requester


def request(request_id: str, user: str) -> GenerationRequest:
    return GenerationRequest(
        request_id=request_id,
        prompt="p",
        width=64,
        height=64,
        steps=2,
        guidance=5,
        seeds=(1, 2, 3, 4),
        model="tiny",
        requester=Requester(platform=Platform.CLI, user_id=user, chat_id="c"),
    )


async def test_a_late_job_from_another_user_starts_within_the_next_few(redis: aioredis.Redis) -> None:
    arq = ArqRedis(connection_pool=redis.connection_pool)
    fair, queue = FairScheduler(arq), JobQueue(arq)
    for i in range(20):
        score = await fair.score(c.QUEUE_GPU, "cli:flooder", images=4, weight=1.0)
        assert await queue.enqueue(request(f"flood{i:02d}", "flooder"), c.QUEUE_GPU, score)
    # the worker has started the first two of the flood meanwhile
    order = [job.decode() for job in await arq.zrange(c.QUEUE_GPU, 0, -1)]
    for job_id in order[:2]:
        await fair.started(c.QUEUE_GPU, float(await arq.zscore(c.QUEUE_GPU, job_id) or 0))
        await arq.zrem(c.QUEUE_GPU, job_id)

    score = await fair.score(c.QUEUE_GPU, "cli:late", images=4, weight=1.0)
    assert await queue.enqueue(request("late", "late"), c.QUEUE_GPU, score)
    position = await queue.position("late", c.QUEUE_GPU)
    assert position is not None and position <= 2
    order = [job.decode() for job in await arq.zrange(c.QUEUE_GPU, 0, -1)]
    assert order.index("late") <= 1
    # every score is in the past for arq, so nothing waits for the wall clock
    assert all(score < 1e12 for _, score in await arq.zrange(c.QUEUE_GPU, 0, -1, withscores=True))


async def test_weights_share_the_queue_in_proportion(redis: aioredis.Redis) -> None:
    fair = FairScheduler(redis)
    for i in range(12):
        await redis.zadd("q", {f"free{i}": await fair.score("q", "free", 1, 1.0)})
        await redis.zadd("q", {f"paid{i}": await fair.score("q", "paid", 1, 2.0)})
    first_twelve = [job.decode() for job in await redis.zrange("q", 0, 11)]
    paid = sum(job.startswith("paid") for job in first_twelve)
    assert paid == 8  # twice the share: 8 of the first 12


async def test_wall_clock_scores_never_move_the_virtual_clock(redis: aioredis.Redis) -> None:
    fair = FairScheduler(redis)
    await fair.started("q", 1.7e12)  # an arq retry re-queued with a wall-clock score
    assert await fair.score("q", "someone", 1, 1.0) < 1e12


async def test_every_score_is_the_first_free_whole_score_from_the_users_tag(redis: aioredis.Redis) -> None:
    """The tag script against the rule written plainly: start at max(clock, the user's last finish), take the
    first whole score nobody holds. Bursts of newcomers (long runs of taken scores), returning users (tags past
    the runs, leaving gaps behind them), weights and a moving clock, in one seeded random order."""
    fair = FairScheduler(redis)
    rng = random.Random(12)
    clock, finish, taken = 1.0, {}, set()
    for step in range(600):
        if rng.random() < 0.05 and taken:  # a worker starts a job: the clock moves to its score
            started = rng.choice(sorted(taken))
            await fair.started(c.QUEUE_GPU, started)
            clock = max(clock, started)
            taken = {score for score in taken if score >= clock}
            continue
        user = f"u{rng.randrange(400)}"
        images, weight = rng.randint(1, 4), rng.choice((1.0, 2.0, 0.5))
        expected = math.ceil(max(clock, finish.get(user, 0.0)))
        while expected in taken:
            expected += 1
        score = await fair.score(c.QUEUE_GPU, user, images, weight)
        assert score == expected, step
        taken.add(expected)
        finish[user] = expected + round(images * COST_PER_IMAGE / weight, 3)
