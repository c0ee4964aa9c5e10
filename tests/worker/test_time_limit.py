"""A job past its time limit: stopped at the next step, reported, refunded, not retried, and no harm to the next.

Real Redis, the core service, the arq job function, and the diffusers backend on the tiny random-weight model.
Two jobs run concurrently on one worker context, as arq runs them with max_jobs 2: the first asks for far more
steps than its time limit allows, the second waits for the device behind it.
"""

from __future__ import annotations

import asyncio

from core import constants as c
from core.delivery.events import stream_key
from core.governance.quotas import RESERVATION_KEY
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.catalog import BackendKind
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.models.verdict import AllowAll
from core.storage.factory import build_store
from tests.pipeline_fixture import Pipeline
from worker.context import WorkerContext
from worker.diffusers_backend import DiffusersBackend
from worker.jobs import generate
from worker.registry import ModelRegistry

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="a")
BOB = Requester(platform=Platform.CLI, user_id="bob", chat_id="b")


async def events_of(pipeline: Pipeline, request_id: str) -> list[ResultEvent]:
    entries = await pipeline.runtime.redis.xrange(stream_key(Platform.CLI))
    events = [ResultEvent.model_validate_json(fields[b"event"]) for _, fields in entries]
    return [event for event in events if event.request_id == request_id]


async def test_a_job_past_its_time_limit_is_stopped_refunded_not_retried_and_the_next_job_renders(
    pipeline: Pipeline, tiny_registry: ModelRegistry
) -> None:
    redis, service = pipeline.runtime.redis, pipeline.runtime.service
    await WorkerRegistry(redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    heavy = (await service.imagine("a lighthouse --steps 50 --n 4", ALICE)).request_id
    light = (await service.imagine("a boat --n 1", BOB)).request_id
    quotas = service.admission.quotas
    assert (await quotas.status(ALICE)).used_today == 4
    assert float(await redis.hget(RESERVATION_KEY.format(request_id=heavy), "work") or 0) == 0.819
    backend = DiffusersBackend(tiny_registry, time_limit_s=1.0)
    deps = WorkerContext(
        settings=pipeline.settings,
        queue_name=c.QUEUE_GPU,
        redis=redis,
        store=build_store(pipeline.settings),
        backends={BackendKind.DIFFUSERS: backend},
        image_moderator=AllowAll(),
    )

    # A first try with tries left: any error that may be retried would raise arq's Retry here.
    first = asyncio.create_task(generate({"imagebot": deps, "job_try": 1}, heavy))
    for _ in range(6000):  # until the heavy job has the device (its deadline is then set)
        if backend.device.busy:
            break
        await asyncio.sleep(0.01)
    # The light job gets room for a loaded test machine.
    backend.time_limit_s = 600
    second = asyncio.create_task(generate({"imagebot": deps, "job_try": 1}, light))
    outcomes = await asyncio.gather(first, second)

    assert outcomes == ["failed", "done"]
    heavy_events = await events_of(pipeline, heavy)
    progress = [event for event in heavy_events if event.kind is EventKind.PROGRESS]
    assert all(event.total_steps == 50 for event in progress)
    assert max((event.step or 0 for event in progress), default=0) < 50  # stopped long before the end
    terminal = [event for event in heavy_events if event.terminal]
    assert [event.kind for event in terminal] == [EventKind.FAILED]  # reported once
    assert terminal[0].reason_code == "time_limit"
    assert terminal[0].message is not None and "took longer than the 1 s limit" in terminal[0].message
    assert (await service.result(heavy)).reason_code == "time_limit"
    assert (await quotas.status(ALICE)).used_today == 0  # refunded
    assert (await quotas.status(ALICE)).in_flight == 0
    assert await redis.zscore(c.QUEUE_CLOUD, f"{heavy}:cloud") is None  # nor handed to OpenAI

    done = [event for event in await events_of(pipeline, light) if event.terminal]
    assert [event.kind for event in done] == [EventKind.DONE]
    assert len(done[0].images) == 1
    assert (await quotas.status(BOB)).used_today == 1
    assert not backend.device.busy
