"""Micro-batching end to end: a real worker (tiny) batches only jobs the fair queue has released to it, and each
request still gets its own result, in the fair order."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from core import constants as c
from core.delivery.events import follow
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import Settings
from tests.pipeline_fixture import Pipeline

MAX_JOBS = 3


async def results(pipeline: Pipeline, wanted: set[str], timeout_s: float = 120) -> dict[str, ResultEvent]:
    found: dict[str, ResultEvent] = {}
    async with asyncio.timeout(timeout_s):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.request_id in wanted and event.terminal:
                found[event.request_id] = event
                if len(found) == len(wanted):
                    return found
    raise AssertionError("unreachable")


async def test_batches_hold_only_jobs_the_fair_queue_released(pipeline: Pipeline, settings: Settings) -> None:
    redis, service = pipeline.runtime.redis, pipeline.runtime.service
    await WorkerRegistry(redis).beat(WorkerInfo("elsewhere", c.QUEUE_GPU, ("tiny",), 0.0))  # routing accepts
    ids: list[str] = []
    for name in ("alice", "bob", "carol"):  # each asks three times in a row; the fair queue interleaves them
        who = Requester(platform=Platform.CLI, user_id=name, chat_id="c")
        await service.admission.quotas.set_tier(f"cli:{name}", "unlimited")
        for i in range(3):
            ids.append((await service.imagine(f"a red fox {name} {i} --n 1", who)).request_id)
    fair_order = [raw.decode() for raw in await redis.zrange(c.QUEUE_GPU, 0, -1)]
    rank = {request_id: fair_order.index(request_id) for request_id in ids}
    assert [rank[i] for i in ids[:3]] == [0, 3, 6]  # alice's second job waits behind bob's and carol's first

    worker = settings.worker.model_copy(
        update={"batch_max_images": 8, "max_jobs": MAX_JOBS, "batch_window_s": 0.3}
    )
    await pipeline.start_worker(settings=settings.model_copy(update={"worker": worker}))
    done = await results(pipeline, set(ids))

    assert all(event.kind is EventKind.DONE for event in done.values())
    assert all(len(event.images) == 1 for event in done.values())
    calls: dict[float, list[str]] = defaultdict(
        list
    )  # one model call, one model time, shared by its requests
    for request_id, event in done.items():
        calls[event.timings["model"]].append(request_id)
        assert event.timings.get("batch", 1.0) == len(
            [e for e in done.values() if e.timings["model"] == event.timings["model"]]
        )
    batches = sorted((sorted(rank[i] for i in members) for members in calls.values()), key=min)
    assert any(len(batch) > 1 for batch in batches), batches  # batching happened
    finished_before = 0
    for batch in batches:
        # a worker holds at most MAX_JOBS unfinished jobs, and takes them in the fair order
        assert len(batch) <= MAX_JOBS, batches
        assert max(batch) < finished_before + MAX_JOBS, batches
        finished_before += len(batch)
