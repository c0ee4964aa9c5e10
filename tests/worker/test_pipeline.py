"""The whole path, end to end: grammar → service → Redis/arq → worker (tiny) → storage → result event."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image
from pydantic import SecretStr

from core import constants as c
from core.delivery.events import follow
from core.errors import InvalidRequest
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import CACHE_KEY, REQUEST_KEY
from core.models.request import GenerationRequest, Mode, Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from worker.postprocess import read_png_parameters

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c1")
BOB = Requester(platform=Platform.CLI, user_id="bob", chat_id="c1")


async def wait_for_result(pipeline: Pipeline, request_id: str, timeout_s: float = 60) -> ResultEvent:
    """Follow the CLI platform's stream until the request's terminal event."""
    async with asyncio.timeout(timeout_s):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.request_id == request_id and event.terminal:
                return event
    raise AssertionError("unreachable")


async def announce_busy_worker(pipeline: Pipeline) -> None:
    """A worker elsewhere is alive with tiny warm but not taking jobs now, so requests stay queued."""
    registry = WorkerRegistry(pipeline.runtime.redis)
    await registry.beat(WorkerInfo("elsewhere", c.QUEUE_GPU, ("tiny",), started_at=0.0))


async def image_bytes(pipeline: Pipeline, key: str) -> bytes:
    return await pipeline.runtime.service.store.get(key)


async def test_imagine_renders_stores_and_reports(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service = pipeline.runtime.service
    submission = await service.imagine("a lighthouse at dusk --ar 2:1 --seed 7 --n 4 --no fog", ALICE)
    assert submission.queue == c.QUEUE_GPU
    assert submission.position == 1 or submission.position is None
    event = await wait_for_result(pipeline, submission.request_id)

    assert event.kind is EventKind.DONE, event.message
    assert event.backend == "diffusers" and event.model == "tiny"
    assert [image.seed for image in event.images] == [7, 8, 9, 10]
    assert "smoke-test" in (event.message or "")
    for index, stored in enumerate(event.images):
        data = await image_bytes(pipeline, stored.key)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert image.size == (stored.width, stored.height) == (88, 48)
        parameters = read_png_parameters(data)
        assert parameters["prompt"] == "a lighthouse at dusk"
        assert parameters["negative_prompt"] == "fog"
        assert parameters["seed"] == str(7 + index)
        assert parameters["model"] == "tiny"
    assert event.grid is not None and (event.grid.width, event.grid.height) == (176, 96)
    assert event.preview is not None and event.preview.content_type == "image/jpeg"
    with Image.open(io.BytesIO(await image_bytes(pipeline, event.preview.key))) as preview:
        assert preview.size == (event.preview.width, event.preview.height)
    stored = await service.result(submission.request_id)
    assert stored == event


async def test_same_seed_gives_identical_bytes_and_then_a_cache_hit(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service, redis = pipeline.runtime.service, pipeline.runtime.redis
    first = await wait_for_result(
        pipeline, (await service.imagine("red fox --seed 42 --n 2", ALICE)).request_id
    )
    assert first.kind is EventKind.DONE and not first.cached

    await redis.delete(*[key async for key in redis.scan_iter(match=CACHE_KEY.format(digest="*"))])
    again = await wait_for_result(
        pipeline, (await service.imagine("red fox --seed 42 --n 2", BOB)).request_id
    )
    assert again.kind is EventKind.DONE and not again.cached
    assert [image.key for image in again.images] == [image.key for image in first.images]
    assert [await image_bytes(pipeline, i.key) for i in again.images] == [
        await image_bytes(pipeline, i.key) for i in first.images
    ]

    cached = await service.imagine("red  fox --seed 42 --n 2", BOB)
    assert cached.cached and cached.queue is None
    assert await redis.zcard(c.QUEUE_GPU) == 0
    hit = await wait_for_result(pipeline, cached.request_id)
    assert hit.cached and hit.requester == BOB
    assert [image.key for image in hit.images] == [image.key for image in first.images]


async def test_a_redelivered_command_is_queued_once(pipeline: Pipeline) -> None:
    await announce_busy_worker(pipeline)
    service, redis = pipeline.runtime.service, pipeline.runtime.redis
    first = await service.imagine("a boat", ALICE, source_id="msg-1")
    second = await service.imagine("a boat", ALICE, source_id="msg-1")
    assert second.request_id == first.request_id
    assert second.duplicate and not first.duplicate
    assert await redis.zcard(c.QUEUE_GPU) == 1


async def test_cancel_removes_a_queued_job_and_reports_it(pipeline: Pipeline) -> None:
    await announce_busy_worker(pipeline)
    service, redis = pipeline.runtime.service, pipeline.runtime.redis
    submission = await service.imagine("a boat", ALICE)
    with pytest.raises(Exception, match="Only the person"):
        await service.cancel(submission.request_id, BOB)
    assert await service.cancel(submission.request_id, ALICE) == "cancelled"
    assert await redis.zcard(c.QUEUE_GPU) == 0
    event = await wait_for_result(pipeline, submission.request_id)
    assert event.kind is EventKind.CANCELLED


async def test_a_redelivered_command_after_its_cancel_is_not_queued_again(pipeline: Pipeline) -> None:
    await announce_busy_worker(pipeline)
    service, redis = pipeline.runtime.service, pipeline.runtime.redis
    first = await service.imagine("a boat", ALICE, source_id="msg-9")
    assert await service.cancel(first.request_id, ALICE) == "cancelled"
    with pytest.raises(InvalidRequest, match="already ended"):
        await service.imagine("a boat", ALICE, source_id="msg-9")
    assert await redis.zcard(c.QUEUE_GPU) == 0


async def test_img2img_variation_upscale_and_reroll(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service = pipeline.runtime.service
    source = Image.new("RGB", (96, 64), (200, 30, 30))
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    img2img = await service.imagine("a red barn --seed 3 --n 1", ALICE, source_image=buffer.getvalue())
    request = await service.queue.load(img2img.request_id)
    assert (
        request.mode is Mode.IMG2IMG and request.source_image and request.source_image.startswith("inputs/")
    )
    assert (request.width, request.height) == (80, 56)  # the source's 3:2 at the model's area
    done = await wait_for_result(pipeline, img2img.request_id)
    assert done.kind is EventKind.DONE and (done.images[0].width, done.images[0].height) == (80, 56)

    grid = await wait_for_result(pipeline, (await service.imagine("a castle --seed 11", ALICE)).request_id)
    assert len(grid.images) == 4

    vary = await service.vary(grid.request_id, 1, ALICE)
    varied = await wait_for_result(pipeline, vary.request_id)
    child = await service.queue.load(vary.request_id)
    assert child.mode is Mode.VARIATION and child.parent_id == grid.request_id and child.parent_index == 1
    assert child.source_image == grid.images[1].key
    assert varied.kind is EventKind.DONE and len(varied.images) == 4
    assert {image.key for image in varied.images}.isdisjoint({image.key for image in grid.images})

    up = await service.upscale(grid.request_id, 2, ALICE)
    upscaled = await wait_for_result(pipeline, up.request_id)
    assert upscaled.kind is EventKind.DONE and len(upscaled.images) == 1
    assert (upscaled.images[0].width, upscaled.images[0].height) == (128, 128)
    assert upscaled.images[0].seed == grid.images[2].seed

    parent = await service.queue.load(grid.request_id)  # rerolled long after it was made
    aged = parent.model_copy(update={"created_at": parent.created_at - c.STALE_JOB_S - 60})
    await pipeline.runtime.redis.set(REQUEST_KEY.format(request_id=grid.request_id), aged.to_json())
    again = await service.reroll(grid.request_id, ALICE)
    rerolled = await wait_for_result(pipeline, again.request_id)
    reroll_request = await service.queue.load(again.request_id)
    assert reroll_request.mode is Mode.REROLL and reroll_request.prompt == "a castle"
    assert set(reroll_request.seeds).isdisjoint({11, 12, 13, 14})
    assert rerolled.kind is EventKind.DONE and len(rerolled.images) == 4

    with pytest.raises(Exception, match="Only the person"):
        await service.vary(grid.request_id, 0, BOB)


async def test_no_live_worker_and_no_openai_is_a_clear_refusal(pipeline: Pipeline) -> None:
    with pytest.raises(Exception, match="No image generator"):
        await pipeline.runtime.service.imagine("a boat", ALICE)


async def test_openai_takes_over_when_no_local_worker_is_alive(pipeline: Pipeline, openai_emulator) -> None:  # type: ignore[no-untyped-def]
    settings = with_settings(
        pipeline.settings,
        openai={
            "api_key": SecretStr(openai_emulator.api_key),
            "base_url": openai_emulator.base_url,
            "model": "dall-e-3",
        },
    )
    from cli.runtime import open_runtime

    async with open_runtime(settings) as runtime:
        cloud = Pipeline(runtime)
        await cloud.start_worker(c.QUEUE_CLOUD)
        try:
            submission = await runtime.service.imagine("a lighthouse --ar 16:9 --no fog --n 1", ALICE)
            assert submission.queue == c.QUEUE_CLOUD
            event = await wait_for_result(cloud, submission.request_id)
        finally:
            await cloud.stop_workers()
    assert event.kind is EventKind.DONE and event.fallback and event.backend == "openai"
    assert (event.images[0].width, event.images[0].height) == (1792, 1024)
    sent = openai_emulator.requests_to("/v1/images/generations")[0].body
    assert sent["model"] == "dall-e-3" and "fog" in sent["prompt"]


async def test_a_failing_job_ends_in_a_failure_event(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service = pipeline.runtime.service
    source = io.BytesIO()
    Image.new("RGB", (64, 64)).save(source, format="PNG")
    submission = await service.imagine("a boat --seed 1 --n 1", ALICE, source_image=source.getvalue())
    request: GenerationRequest = await service.queue.load(submission.request_id)
    assert request.source_image is not None
    await service.store.delete(request.source_image)  # the upload vanished before the worker got to it
    event = await wait_for_result(pipeline, submission.request_id)
    assert event.kind is EventKind.FAILED
    assert submission.request_id in (event.message or "")
    assert "Sorry" in (event.message or "")


async def test_a_flood_from_one_user_does_not_starve_another(pipeline: Pipeline) -> None:
    settings = with_settings(pipeline.settings, worker={"max_jobs": 1})
    await pipeline.start_worker(settings=settings)
    service = pipeline.runtime.service
    await service.admission.quotas.set_tier("cli:alice", "unlimited")  # free tiers can't queue 20 at once
    flood = [(await service.imagine(f"wave {i} --n 1", ALICE)).request_id for i in range(20)]
    late = await service.imagine("a single boat --n 1", BOB)
    assert late.position is not None and late.position <= 3
    finished: list[str] = []
    async with asyncio.timeout(120):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.kind is EventKind.DONE:
                finished.append(event.request_id)
            if late.request_id in finished:
                break
    assert finished.index(late.request_id) <= 3, finished
    assert set(finished) - {late.request_id} <= set(flood)
