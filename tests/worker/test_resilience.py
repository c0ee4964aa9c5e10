"""A worker outlives its Redis, holds short leases on its jobs, runs only JSON jobs, and warms its image check.

In-process `ImagebotWorker`s (worker/main.py build_worker, not burst) against real Redis servers; one test restarts
its own server on a fixed port, as an operator's restart or a failover would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix, job_key_prefix
from PIL import Image

from cli.redis_server import EmbeddedRedis
from cli.runtime import open_runtime
from core import constants as c
from core.delivery.events import follow, stream_key
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.catalog import BackendKind
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import Settings
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from worker.backend import GeneratedImage, Generation, ProgressCallback
from worker.heartbeat import lease_s
from worker.main import ImagebotWorker, build_worker

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c")


def tuned(settings: Settings, **worker: Any) -> Settings:
    return with_settings(settings, worker=worker)


@contextlib.asynccontextmanager
async def running(worker: ImagebotWorker, redis: aioredis.Redis) -> AsyncIterator[asyncio.Task[None]]:
    """Run the worker in this loop until it has announced itself; close it afterwards."""
    task = asyncio.create_task(worker.async_run())
    try:
        await WorkerRegistry(redis).wait_until_serving(worker.queue_name, 120, task)
        yield task
    finally:
        await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def until(condition: Callable[[], bool], within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def events_of(redis: aioredis.Redis, request_id: str) -> list[ResultEvent]:
    entries = await redis.xrange(stream_key(Platform.CLI))
    events = [ResultEvent.model_validate_json(fields[b"event"]) for _, fields in entries]
    return [event for event in events if event.request_id == request_id]


async def result_of(redis: aioredis.Redis, request_id: str, within_s: float = 60) -> ResultEvent:
    async with asyncio.timeout(within_s):
        async for event in follow(redis, Platform.CLI):
            if event.request_id == request_id and event.terminal:
                return event
    raise AssertionError("unreachable")


async def test_a_worker_rides_out_a_redis_restart_and_serves_again(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker.main")
    server = EmbeddedRedis(
        protected=False
    ).start()  # its own server: restarting it must not disturb other tests
    try:
        settings = with_settings(tuned(settings, heartbeat_interval_s=0.5), redis_url=server.url)
        settings = with_settings(settings, moderation={"image_check": False})
        worker = build_worker(settings, c.QUEUE_GPU)
        watcher = aioredis.Redis.from_url(server.url)
        async with running(worker, watcher) as task:
            assert worker.ready
            server.stop()  # no persistence: it comes back empty, as after a crash or a failover to a fresh replica
            await until(lambda: not worker.ready, 10)
            server.start()  # the same port
            await until(lambda: worker.ready, 30)
            assert not task.done()
            async with open_runtime(settings) as runtime:
                await WorkerRegistry(runtime.redis).wait_until_serving(
                    c.QUEUE_GPU, 30, task
                )  # announced again
                submission = await runtime.service.imagine("a boat after the restart --n 1", ALICE)
                event = await result_of(runtime.redis, submission.request_id)
            assert event.kind is EventKind.DONE and len(event.images) == 1
        await watcher.aclose()
    finally:
        server.stop()
    assert "lost Redis" in caplog.text and "reached Redis again" in caplog.text


class HeldBackend:
    """Renders a blank image once the test lets it (a long render, on cue)."""

    name = "diffusers"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
    ) -> Generation:
        self.calls += 1
        await self.release.wait()
        images = tuple(GeneratedImage(Image.new("RGB", (64, 64)), seed) for seed in request.seeds)
        return Generation(images=images, model="tiny", backend="diffusers")

    async def close(self) -> None:
        pass


class HeldWorker(ImagebotWorker):
    """The real worker with its diffusers backend swapped for a HeldBackend after start-up."""

    def __init__(self, settings: Settings, backend: HeldBackend) -> None:
        super().__init__(settings, c.QUEUE_GPU)
        self.held = backend

    async def _startup(self, ctx: dict[str, Any]) -> None:
        await super()._startup(ctx)
        ctx["imagebot"].backends[BackendKind.DIFFUSERS] = self.held


async def test_a_long_job_keeps_a_short_lease_and_runs_once(pipeline: Pipeline, settings: Settings) -> None:
    settings = tuned(settings, heartbeat_interval_s=0.5)
    lease = lease_s(0.5)
    backend = HeldBackend()
    first, second = (
        HeldWorker(tuned(settings, name="first"), backend),
        build_worker(tuned(settings, name="second"), c.QUEUE_GPU),
    )
    redis = pipeline.runtime.redis
    async with running(first, redis):
        submission = await pipeline.runtime.service.imagine("a boat --n 1", ALICE)
        key = in_progress_key_prefix + submission.request_id
        await until(lambda: backend.calls == 1, 30)
        async with running(second, redis):
            started = time.monotonic()
            ttls = []
            while time.monotonic() - started < 3 * lease:  # three leases long: renewed, never lapsed
                ttls.append(await redis.pttl(key))
                await asyncio.sleep(0.1)
            assert 0 < max(ttls) <= lease * 1000 and min(ttls) > 0
            backend.release.set()
            event = await result_of(redis, submission.request_id)
    assert event.kind is EventKind.DONE
    assert backend.calls == 1
    assert [e.kind for e in await events_of(redis, submission.request_id)].count(EventKind.STARTED) == 1


class Exploit:
    """A pickle that, when loaded, creates a file: what a job from someone who can write to Redis could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


async def test_a_pickled_job_is_refused_without_being_run(pipeline: Pipeline, tmp_path: Path) -> None:
    redis = pipeline.runtime.redis
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"t": 1, "f": c.JOB_GENERATE, "a": (Exploit(marker),), "k": {}, "et": 0})
    await redis.set(job_key_prefix + "evil", payload)
    await redis.zadd(c.QUEUE_GPU, {"evil": 1})
    await pipeline.start_worker()
    submission = await pipeline.runtime.service.imagine("a boat --n 1", ALICE)
    assert (await result_of(redis, submission.request_id)).kind is EventKind.DONE  # the worker serves on
    assert not marker.exists()
    assert await redis.zscore(c.QUEUE_GPU, "evil") is None  # dropped, not retried
    assert await redis.get(job_key_prefix + "evil") is None


async def test_jobs_go_on_the_queue_as_json(pipeline: Pipeline) -> None:
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    submission = await pipeline.runtime.service.imagine("a boat --n 1", ALICE)
    raw = await pipeline.runtime.redis.get(job_key_prefix + submission.request_id)
    job = json.loads(raw)
    assert job["f"] == c.JOB_GENERATE and job["a"] == [submission.request_id]


async def test_the_image_check_is_warm_before_the_worker_announces_itself(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert pipeline.settings.moderation.image_check
    await pipeline.start_worker()
    messages = [record.getMessage() for record in caplog.records]
    loaded = next(i for i, m in enumerate(messages) if m == "nudenet detector loaded")
    ready = next(i for i, m in enumerate(messages) if "ready on" in m)
    assert loaded < ready  # the first user's job does not pay for loading it
