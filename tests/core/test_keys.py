"""The Redis key inventory: every key the end-to-end flows leave is listed in core.keys, and expires when promised.

The flows run against a real Redis with the real service, admin commands, an in-process worker on `tiny` and a
consumer-group delivery; then every key is SCANned and held to its template in core.keys.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import redis.asyncio as aioredis

from core import constants as c
from core import keys
from core.commands.buttons import Button
from core.delivery.delivery_log import DeliveryLog
from core.delivery.events import EventConsumer
from core.errors import PromptRejected
from core.governance.bans import BanRecord
from core.governance.preferences import PreferenceStore
from core.jobs.queue import CancelOutcome
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import ARQ_KEYS, BAN_KEY, INVENTORY, REQUEST_KEY, Expiry, spec_for
from core.models.privileges import Privilege
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.pipeline_fixture import Pipeline

GROUP = "-100"
ALICE = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id=GROUP, community_id=GROUP)
OWNER = Requester(
    platform=Platform.TELEGRAM, user_id="9", chat_id=GROUP, community_id=GROUP, privilege=Privilege.OWNER
)
BOB = Requester(platform=Platform.CLI, user_id="bob", chat_id="c1")


async def key_problems(redis: aioredis.Redis) -> tuple[list[str], set[str]]:
    """Every key in Redis held to core.keys: what is wrong, and which templates were seen."""
    problems: list[str] = []
    seen: set[str] = set()
    async for raw in redis.scan_iter(count=1000):
        key = raw.decode()
        spec = spec_for(key)
        if spec is None:
            missing = (
                "" if key.startswith(f"{c.KEY_PREFIX}:") else f", and it lacks the {c.KEY_PREFIX}: prefix"
            )
            problems.append(f"{key}: no template in core.keys makes it{missing}")
            continue
        seen.add(spec.template)
        ttl_ms = await redis.pttl(key)
        if spec.expiry is Expiry.TTL and ttl_ms <= 0:
            problems.append(f"{key}: {spec.template} promises a TTL ({spec.lifetime}), but it has none")
        elif spec.expiry is Expiry.WHEN_TIMED:
            if spec.template != BAN_KEY:
                problems.append(f"{key}: {spec.template} expires when timed; teach this test how to tell")
                continue
            timed = BanRecord.model_validate_json(await redis.get(key) or b"").until is not None
            if timed != (ttl_ms > 0):
                problems.append(f"{key}: a {'timed' if timed else 'lasting'} ban with TTL {ttl_ms} ms")
    return problems, seen


async def deliver(redis: aioredis.Redis, platform: Platform, request_id: str) -> ResultEvent:
    """What a bot does with a result: read it through the consumer group, post it, note where it went."""
    consumer = EventConsumer(redis, platform, f"{platform}-1")
    delivered: list[ResultEvent] = []

    async def post(event: ResultEvent) -> None:
        if event.terminal:
            await DeliveryLog(redis).record(event.request_id, {"chat_id": GROUP, "message_id": "7"})
            delivered.append(event)

    async with asyncio.timeout(90):
        while not any(event.request_id == request_id for event in delivered):
            await consumer.read_once(post, block_ms=200)
    return next(event for event in delivered if event.request_id == request_id)


async def test_every_key_the_flows_leave_is_listed_and_expires_when_promised(pipeline: Pipeline) -> None:
    runtime = pipeline.runtime
    service, admin, redis = runtime.service, runtime.admin, runtime.redis
    await pipeline.start_worker()

    # A preference and a community's rules.
    await PreferenceStore(redis).update("telegram", "1", aspect="16:9", n=2)
    await admin.execute("policy nsfw spoiler", OWNER)
    await admin.execute("tier 1 supporter", OWNER)
    await admin.execute("quota 1 100", OWNER)
    await admin.execute("style add ink ink drawing of {prompt}", OWNER)

    # /imagine → queue → worker → result event → delivery (twice: the second is a cache hit), then a V2 press.
    first = await service.imagine("a lighthouse --seed 7 --n 2", ALICE, reply_to={"chat_id": GROUP})
    done = await deliver(redis, Platform.TELEGRAM, first.request_id)
    assert done.kind is EventKind.DONE, done.message
    again = await service.imagine("a lighthouse --seed 7 --n 2", BOB)
    assert again.cached and (await deliver(redis, Platform.CLI, again.request_id)).kind is EventKind.DONE
    pressed = await service.press(Button(c.ACTION_VARY, first.request_id, 1), ALICE)
    assert pressed.submission is not None
    varied = await deliver(redis, Platform.TELEGRAM, pressed.submission.request_id)
    assert varied.kind is EventKind.DONE, varied.message

    # A refused prompt (counted towards an automatic ban), a timed ban and a lasting one.
    await admin.execute("block add dragon", OWNER)
    with pytest.raises(PromptRejected):
        await service.imagine("a dragon", ALICE)
    await admin.execute("ban 2 for 2h spam", OWNER)
    await admin.execute("ban 3 flooding", OWNER)
    problems, seen = await key_problems(redis)  # while the worker runs (its heartbeat and arq's health check)
    assert problems == []

    # A cancel: no worker takes jobs now, but one is alive, so the job waits on the queue until cancelled.
    await pipeline.stop_workers()
    await WorkerRegistry(redis).beat(WorkerInfo("elsewhere", c.QUEUE_GPU, ("tiny",), 0.0))
    queued = await service.imagine("a boat --n 1", BOB)
    problems, seen_waiting = await key_problems(redis)  # while a job waits (arq's job, an in-flight slot)
    assert problems == []
    assert await service.cancel(queued.request_id, BOB) is CancelOutcome.CANCELLED
    assert (await deliver(redis, Platform.CLI, queued.request_id)).kind is EventKind.CANCELLED
    await admin.execute("pause", OWNER)
    await service.forgetter.plan(BOB)  # a /forget waiting for its confirmation

    problems, seen_at_end = await key_problems(redis)
    assert problems == []
    exercised = {
        keys.REQUEST_KEY, keys.RESULT_KEY, keys.CACHE_KEY, keys.CANCELLED_KEY, keys.RECENT_KEY,
        keys.DURATIONS_KEY, keys.WORKER_KEY, keys.HEALTH_CHECK_TEMPLATE, keys.FAIR_VCLOCK_KEY,
        keys.FAIR_FINISH_KEY, keys.EVENTS_STREAM, keys.DELIVERED_KEY, keys.MESSAGES_KEY, keys.USAGE_DAY_KEY,
        keys.USAGE_HOUR_KEY, keys.INFLIGHT_KEY, keys.RESERVATION_KEY, keys.TIER_KEY, keys.OVERRIDE_KEY,
        keys.BAN_KEY, keys.REFUSALS_KEY, keys.POLICY_KEY, keys.PAUSED_KEY, keys.BLOCKLIST_KEY, keys.PREFS_KEY,
        keys.AUDIT_STREAM, "arq:job:{job_id}", "arq:result:{job_id}", keys.HISTORY_KEY, keys.STYLES_KEY,
        keys.USER_REQUESTS_KEY, keys.GENERATED_KEY,
        keys.STATS_KEY, keys.STATS_USERS_KEY, keys.STATS_STAGE_KEY, keys.FORGET_KEY,
    }  # fmt: skip
    seen |= seen_waiting | seen_at_end
    assert exercised <= seen, sorted(exercised - seen)


async def test_the_check_names_a_key_without_the_prefix_or_without_its_ttl(redis: aioredis.Redis) -> None:
    await redis.set("stray:thing", "1")
    await redis.set(f"{c.KEY_PREFIX}:unlisted:1", "1", ex=60)
    await redis.set(REQUEST_KEY.format(request_id="abcdefghijklmnop"), "{}")  # forgot ex=REQUEST_TTL_S
    timed = BanRecord(reason="spam", by="system", until=1e12).model_dump_json()
    await redis.set(BAN_KEY.format(scope="global", owner="telegram:5"), timed)  # a timed ban that never ends
    await redis.set(f"{REQUEST_KEY.format(request_id='zzzzzzzzzzzzzzzz')}", "{}", ex=60)  # fine

    problems, _ = await key_problems(redis)

    assert sorted(problems) == [
        "imagebot:ban:global:telegram:5: a timed ban with TTL -1 ms",
        "imagebot:request:abcdefghijklmnop: imagebot:request:{request_id} promises a TTL "
        f"({spec_for(REQUEST_KEY).lifetime}), but it has none",  # type: ignore[union-attr]
        "imagebot:unlisted:1: no template in core.keys makes it",
        "stray:thing: no template in core.keys makes it, and it lacks the imagebot: prefix",
    ]


def test_every_template_is_ours_unique_and_found_again_from_a_key_it_makes() -> None:
    templates = [spec.template for spec in INVENTORY]
    assert len(templates) == len(set(templates))
    for spec in (*INVENTORY, *ARQ_KEYS):
        if spec not in ARQ_KEYS:
            assert spec.template.startswith(f"{c.KEY_PREFIX}:"), spec.template
        fields = dict.fromkeys(re.findall(r"\{([a-z_]+)\}", spec.template), "telegram:-100")
        assert spec_for(spec.template.format(**fields)) == spec, spec.template
        assert spec.lifetime and spec.kind in {"string", "list", "set", "zset", "hash", "stream"}
    assert spec_for(c.QUEUE_GPU) == spec_for(c.QUEUE_CLOUD) == spec_for(keys.QUEUE_TEMPLATE)
