"""The numbers /metrics shows move with what the service and the workers do (read over HTTP, as Prometheus
would): refusals by kind, queue depth sampled at each scrape, warm models, jobs, device time, paid spend."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from cli.health import queue_depth
from cli.runtime import open_runtime
from core import constants as c
from core.delivery.events import follow
from core.governance.quotas import paid_quote
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.metrics_scrape import served
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c1")
GPU = c.QUEUE_GPU


async def result_of(pipeline: Pipeline, request_id: str) -> ResultEvent:
    async with asyncio.timeout(60):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.request_id == request_id and event.terminal:
                return event
    raise AssertionError("unreachable")


async def test_refusals_queue_depth_warm_models_and_jobs_move(pipeline: Pipeline) -> None:
    service = pipeline.runtime.service
    async with served() as endpoint:
        endpoint.server.add_sampler(queue_depth(pipeline.runtime.redis))
        before = await endpoint.metrics()
        with pytest.raises(Exception, match="No image generator"):
            await service.imagine("a boat", ALICE)
        with pytest.raises(Exception, match="--ar"):
            await service.imagine("a boat --ar 99:1", ALICE)
        await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("elsewhere", GPU, ("tiny",), 0.0))
        submission = await service.imagine("a boat --n 1", ALICE)  # waits: the worker elsewhere takes nothing
        waiting = await endpoint.metrics()
        await pipeline.start_worker()
        assert (await result_of(pipeline, submission.request_id)).kind is EventKind.DONE
        after = await endpoint.metrics_when(lambda m: m.value("imagebot_queue_depth", queue=GPU) == 0)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("imagebot_refusals_total", kind="backend_unavailable") == 1
    assert moved("imagebot_refusals_total", kind="invalid_request") == 1
    assert waiting.value("imagebot_queue_depth", queue=GPU) == 1
    assert after.value("imagebot_queue_depth", queue=GPU) == 0
    assert after.value("imagebot_warm_models", model="tiny") == 1
    assert moved("imagebot_jobs_total", queue=GPU, outcome="done", reason="") == 1
    assert moved("imagebot_device_busy_seconds_total") > 0
    assert moved("imagebot_stage_seconds_count", stage="model") == 1


async def test_paid_fallback_spend_counts_each_image_openai_made(pipeline: Pipeline, openai_emulator) -> None:  # type: ignore[no-untyped-def]
    openai = {
        "api_key": SecretStr(openai_emulator.api_key),
        "base_url": openai_emulator.base_url,
        "model": "dall-e-3",
    }
    async with open_runtime(with_settings(pipeline.settings, openai=openai)) as runtime:
        cloud = Pipeline(runtime)
        async with served() as endpoint:
            before = await endpoint.metrics()
            await cloud.start_worker(c.QUEUE_CLOUD)
            try:
                submission = await runtime.service.imagine("a lighthouse --n 2", ALICE)
                assert submission.queue == c.QUEUE_CLOUD
                assert (await result_of(cloud, submission.request_id)).kind is EventKind.DONE
                quote = paid_quote(
                    runtime.settings.openai, await runtime.service.queue.load(submission.request_id)
                )
                spend = "imagebot_paid_fallback_usd_total"
                after = await endpoint.metrics_when(lambda m: m.value(spend) > before.value(spend))
            finally:
                await cloud.stop_workers()
    spent = after.value("imagebot_paid_fallback_usd_total") - before.value("imagebot_paid_fallback_usd_total")
    assert quote.images == 2 and quote.total_usd > 0
    assert spent == pytest.approx(quote.total_usd)  # the price table's, for the model, quality and size
