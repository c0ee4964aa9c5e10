"""The job's failure semantics: retry, hand over to OpenAI, or report — never vanish, never charge twice.

A backend that fails on purpose is plugged in through the ImageBackend seam (our own Protocol), and the arq job
function is called with the context arq would give it.
"""

from __future__ import annotations

from typing import Any

import pytest
from arq import Retry
from PIL import Image
from pydantic import SecretStr

from core import constants as c
from core.commands.messages import progress_message
from core.delivery.events import EventConsumer, stream_key
from core.errors import GenerationFailed
from core.keys import REQUEST_KEY
from core.models.catalog import BackendKind
from core.models.request import GenerationRequest, Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.models.verdict import AllowAll
from core.settings import Settings
from core.storage.factory import build_store
from core.storage.protocol import ImageStore
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from tests.worker.test_pipeline import wait_for_result
from worker.backend import Generation, ProgressCallback
from worker.context import WorkerContext
from worker.jobs import RETRY_MESSAGE, generate

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c")


class BrokenBackend:
    name = "diffusers"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
    ) -> Generation:
        self.calls += 1
        raise GenerationFailed("the GPU fell over")

    async def close(self) -> None:
        pass


def context(
    pipeline: Pipeline, settings: Settings, store: ImageStore, backend: BrokenBackend
) -> WorkerContext:
    return WorkerContext(
        settings=settings,
        queue_name=c.QUEUE_GPU,
        redis=pipeline.runtime.redis,
        store=store,
        backends={BackendKind.DIFFUSERS: backend},
        image_moderator=AllowAll(),
    )


async def queued(pipeline: Pipeline, text: str = "a boat --n 2") -> str:
    from core.jobs.workers import WorkerInfo, WorkerRegistry

    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))
    return (await pipeline.runtime.service.imagine(text, ALICE)).request_id


async def terminal_events(pipeline: Pipeline, request_id: str) -> list[EventKind]:
    from core.delivery.events import stream_key
    from core.models.result import ResultEvent

    entries = await pipeline.runtime.redis.xrange(stream_key(Platform.CLI))
    events = [ResultEvent.model_validate_json(fields[b"event"]) for _, fields in entries]
    return [event.kind for event in events if event.request_id == request_id and event.terminal]


async def test_a_failing_backend_is_retried_then_reported_with_the_quota_refunded(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    backend = BrokenBackend()
    deps = context(pipeline, settings, build_store(settings), backend)
    request_id = await queued(pipeline)
    quotas = pipeline.runtime.service.admission.quotas
    assert (await quotas.status(ALICE)).used_today == 2

    ctx: dict[str, Any] = {"imagebot": deps, "job_try": 1}
    with pytest.raises(Retry):
        await generate(ctx, request_id)
    assert await terminal_events(pipeline, request_id) == []

    ctx["job_try"] = settings.worker.max_tries
    assert await generate(ctx, request_id) == "failed"
    assert backend.calls == 2
    assert await terminal_events(pipeline, request_id) == [EventKind.FAILED]
    result = await pipeline.runtime.service.result(request_id)
    assert result.message and request_id in result.message and "GPU" not in result.message
    assert (await quotas.status(ALICE)).used_today == 0


async def test_a_retry_tells_the_user_the_job_is_being_tried_again(pipeline: Pipeline) -> None:
    deps = context(pipeline, pipeline.settings, build_store(pipeline.settings), BrokenBackend())
    request_id = await queued(pipeline)
    with pytest.raises(Retry):
        await generate({"imagebot": deps, "job_try": 1}, request_id)
    await generate({"imagebot": deps, "job_try": 2}, request_id)  # e.g. after the first worker was killed

    entries = await pipeline.runtime.redis.xrange(stream_key(Platform.CLI))
    events = [ResultEvent.model_validate_json(fields[b"event"]) for _, fields in entries]
    started = [
        event for event in events if event.request_id == request_id and event.kind is EventKind.STARTED
    ]
    assert [event.message for event in started] == [None, RETRY_MESSAGE]
    # what both bots show in place of the progress that stopped
    assert progress_message(started[1]) == "A generator stopped while making this; trying again…"


async def test_a_final_local_failure_goes_to_openai_when_configured(pipeline: Pipeline) -> None:
    settings = with_settings(pipeline.settings, openai={"api_key": SecretStr("sk-test")})
    deps = context(pipeline, settings, build_store(settings), BrokenBackend())
    request_id = await queued(pipeline)
    ctx: dict[str, Any] = {"imagebot": deps, "job_try": settings.worker.max_tries}
    assert await generate(ctx, request_id) == "fallback"
    assert await pipeline.runtime.redis.zscore(c.QUEUE_CLOUD, f"{request_id}:cloud") is not None
    assert await terminal_events(pipeline, request_id) == []  # the cloud job will report


async def test_a_job_whose_worker_died_reports_instead_of_vanishing(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    backend = BrokenBackend()
    deps = context(pipeline, settings, build_store(settings), backend)
    request_id = await queued(pipeline)
    # arq re-runs a job whose worker was killed once its in-progress key expires; past our tries it must report
    ctx: dict[str, Any] = {"imagebot": deps, "job_try": settings.worker.max_tries + 1}
    assert await generate(ctx, request_id) == "failed"
    assert backend.calls == 0
    assert await terminal_events(pipeline, request_id) == [EventKind.FAILED]
    assert (await pipeline.runtime.service.result(request_id)).reason_code == "worker_lost"


async def test_openai_does_not_stand_in_beyond_the_paid_budget(pipeline: Pipeline) -> None:
    settings = with_settings(
        pipeline.settings,
        openai={
            "api_key": SecretStr("sk-test")
        },  # gpt-image-1 at medium quality ("standard"), 1024x1024: $0.042
        quotas={"openai_daily_budget_usd": 0.10},
    )
    deps = context(pipeline, settings, build_store(settings), BrokenBackend())
    first, second = await queued(pipeline, "a boat --n 2"), await queued(pipeline, "a ship --n 2")
    ctx: dict[str, Any] = {"imagebot": deps, "job_try": settings.worker.max_tries}
    assert await generate(ctx, first) == "fallback"  # 8.4 cents of 10
    assert await generate(ctx, second) == "failed"  # another 8.4 would pass the budget
    assert await pipeline.runtime.redis.zscore(c.QUEUE_CLOUD, f"{second}:cloud") is None
    result = await pipeline.runtime.service.result(second)
    assert "budget for the paid image service is used up" in (result.message or "")


async def test_a_job_that_waited_too_long_is_reported_not_rendered(pipeline: Pipeline) -> None:
    import time

    settings = pipeline.settings
    backend = BrokenBackend()
    deps = context(pipeline, settings, build_store(settings), backend)
    request_id = await queued(pipeline)
    queue = pipeline.runtime.service.queue
    old = (await queue.load(request_id)).model_copy(update={"created_at": time.time() - c.STALE_JOB_S - 60})
    await pipeline.runtime.redis.set(REQUEST_KEY.format(request_id=request_id), old.to_json())
    assert await generate({"imagebot": deps, "job_try": 1}, request_id) == "failed"
    assert backend.calls == 0
    result = await pipeline.runtime.service.result(request_id)
    assert result.reason_code == "stale" and "waited too long" in (result.message or "")
    assert (await pipeline.runtime.service.admission.quotas.status(ALICE)).used_today == 0


async def test_a_job_run_again_after_its_request_ended_renders_nothing(pipeline: Pipeline) -> None:
    """A job handed back while it was finishing (or whose lease lapsed late) comes round again: it must not
    render, charge or reply a second time."""
    await pipeline.start_worker()
    service = pipeline.runtime.service
    submission = await service.imagine("a fox --n 1 --seed 3", ALICE)
    first = await wait_for_result(pipeline, submission.request_id)
    assert first.kind is EventKind.DONE
    await pipeline.stop_workers()
    replies = await reply_to_everything(pipeline)  # the front end replied with it
    assert [e.request_id for e in replies] == [submission.request_id]
    before = await pipeline.runtime.redis.xlen(stream_key(Platform.CLI))
    assert await generate({"imagebot": idle_worker(pipeline), "job_try": 1}, submission.request_id) == "done"
    assert await pipeline.runtime.redis.xlen(stream_key(Platform.CLI)) == before  # no new event


async def test_a_result_kept_but_never_published_is_published_by_the_jobs_next_run(
    pipeline: Pipeline,
) -> None:
    """Redis can fail between keeping a result and publishing it (a failover while the job finished): the retry
    that follows finds the result kept, renders nothing, and still gets it to the user, once."""
    await pipeline.start_worker()
    service = pipeline.runtime.service
    submission = await service.imagine("a fox --n 1 --seed 4", ALICE)
    done = await wait_for_result(pipeline, submission.request_id)
    await pipeline.stop_workers()
    redis = pipeline.runtime.redis
    await redis.delete(stream_key(Platform.CLI))  # as if the publish had never reached Redis
    worker = idle_worker(pipeline)

    assert await generate({"imagebot": worker, "job_try": 2}, submission.request_id) == "done"
    replies = await reply_to_everything(pipeline)
    assert [(e.request_id, e.kind, e.images) for e in replies] == [(done.request_id, done.kind, done.images)]

    assert await generate({"imagebot": worker, "job_try": 3}, submission.request_id) == "done"  # and again
    assert await reply_to_everything(pipeline) == []  # replied once


def idle_worker(pipeline: Pipeline) -> WorkerContext:
    return WorkerContext(
        settings=pipeline.settings,
        queue_name=c.QUEUE_GPU,
        redis=pipeline.runtime.redis,
        store=pipeline.runtime.service.store,
        backends={},  # no backend at all: rendering would fail loudly
        image_moderator=AllowAll(),
    )


async def reply_to_everything(pipeline: Pipeline) -> list[ResultEvent]:
    """What a CLI front end replies with now: every terminal event its consumer delivers (duplicates skipped)."""
    replied: list[ResultEvent] = []

    async def reply(event: ResultEvent) -> None:
        if event.terminal:
            replied.append(event)

    consumer = EventConsumer(pipeline.runtime.redis, Platform.CLI, "cli-test")
    while await consumer.read_once(reply, block_ms=10):
        pass
    return replied
