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
from tests.settings import with_settings

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

    worker = {"batch_max_images": 8, "max_jobs": MAX_JOBS, "batch_window_s": 0.3}
    await pipeline.start_worker(settings=with_settings(settings, worker=worker))
    done = await results(pipeline, set(ids))

    assert all(event.kind is EventKind.DONE for event in done.values())
    assert all(len(event.images) == 1 for event in done.values())
    # One model call, one model time (to 0.1 ms) and one batch size, shared by its requests. Two calls of the
    # same size can take the same time to 0.1 ms: such a group is whole batches, taken in the fair order.
    calls: dict[tuple[float, float], list[int]] = defaultdict(list)
    for request_id, event in done.items():
        calls[(event.timings["model"], event.timings.get("batch", 1.0))].append(rank[request_id])
    batches = []
    for (_, size), members in calls.items():
        assert len(members) % size == 0, calls  # every batch's requests report its size
        ordered = sorted(members)
        batches += [ordered[start : start + int(size)] for start in range(0, len(ordered), int(size))]
    batches.sort(key=min)
    assert any(len(batch) > 1 for batch in batches), batches  # batching happened
    finished_before = 0
    for batch in batches:
        # a worker holds at most MAX_JOBS unfinished jobs, and takes them in the fair order
        assert len(batch) <= MAX_JOBS, batches
        assert max(batch) < finished_before + MAX_JOBS, batches
        finished_before += len(batch)
