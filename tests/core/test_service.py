"""The service façade against a real Redis: button presses (double taps, deliberate repeats) and notes."""

from __future__ import annotations

import asyncio

from core import constants as c
from core.commands.buttons import Button
from core.commands.messages import queued_message, result_caption
from core.delivery.events import follow
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import WORKER_KEY
from core.models.request import Mode, Platform, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from core.service import ImagineService
from tests.pipeline_fixture import Pipeline

ALICE = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="1")
BOB = Requester(platform=Platform.TELEGRAM, user_id="2", chat_id="2")
EDGE = 1_700_000_010.0  # a multiple of 30 s: where the old fixed buckets of button presses changed


async def announce_worker(pipeline: Pipeline) -> None:
    """A live heartbeat with no worker behind it: requests are accepted and wait in the queue."""
    await WorkerRegistry(pipeline.runtime.redis).beat(WorkerInfo("w", c.QUEUE_GPU, ("tiny",), 0.0))


async def finished_grid(service: ImagineService, prompt: str, requester: Requester = ALICE) -> str:
    """A request whose one image is done (as a worker would have left it); returns its id."""
    parent = await service.imagine(f"{prompt} --n 1", requester)
    key = await service.store.put(b"\x89PNG pretend", "image/png")
    image = StoredImage(key=key, url="file:///x.png", width=64, height=64, seed=5, index=0)
    await service.results.save(
        ResultEvent(kind=EventKind.DONE, request_id=parent.request_id, requester=requester, images=(image,))
    )
    return parent.request_id


async def test_a_double_click_across_a_30_second_edge_is_queued_once(pipeline: Pipeline) -> None:
    await announce_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished_grid(service, "a kite")
    v1 = Button(c.ACTION_VARY, parent, 0)
    first = await service.press(v1, ALICE, now=EDGE - 0.2)
    again = await service.press(v1, ALICE, now=EDGE + 0.3)
    assert first.submission is not None and again.submission is not None
    assert not first.submission.duplicate and again.submission.duplicate
    assert again.submission.request_id == first.submission.request_id
    assert queued_message(again.submission) == "I'm already working on that one."
    assert await pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 2  # the kite and one variation


async def test_a_second_reroll_after_the_first_arrived_is_new_work(pipeline: Pipeline) -> None:
    await announce_worker(pipeline)
    service, redis = pipeline.runtime.service, pipeline.runtime.redis
    parent = (await service.imagine("a red kite --n 1", ALICE)).request_id
    reroll = Button(c.ACTION_REROLL, parent)
    first = (await service.press(reroll, ALICE, now=EDGE + 1)).submission
    assert first is not None and not first.duplicate
    tap = (await service.press(reroll, ALICE, now=EDGE + 1.5)).submission  # a double tap
    waiting = (await service.press(reroll, ALICE, now=EDGE + 9)).submission  # the first is still queued
    assert tap is not None and waiting is not None
    assert (tap.request_id, tap.duplicate) == (first.request_id, True)
    assert (waiting.request_id, waiting.duplicate) == (first.request_id, True)

    await pipeline.start_worker()  # renders the kite and the reroll
    async with asyncio.timeout(120):  # the first render on a busy machine can take half a minute
        async for event in follow(redis, Platform.TELEGRAM):
            if event.request_id == first.request_id and event.terminal:
                assert event.kind is EventKind.DONE
                break
        for _ in range(100):  # arq drops the job's key just after the job returns
            if not await service.queue.pending(first.request_id):
                break
            await asyncio.sleep(0.05)

    second = (await service.press(reroll, ALICE, now=EDGE + 12)).submission
    assert second is not None and not second.duplicate
    assert second.request_id != first.request_id
    assert (await service.queue.load(second.request_id)).mode is Mode.REROLL


async def test_a_refused_press_is_not_taken_for_a_repeat(pipeline: Pipeline) -> None:
    service = pipeline.runtime.service
    await announce_worker(pipeline)
    parent = await finished_grid(service, "a lantern")
    await pipeline.runtime.redis.delete(WORKER_KEY.format(worker_id="w"))  # no generator for a moment
    v1 = Button(c.ACTION_VARY, parent, 0)
    refused = None
    try:
        await service.press(v1, ALICE, now=EDGE)
    except Exception as exc:  # BackendUnavailable: nothing was queued
        refused = exc
    assert refused is not None
    await announce_worker(pipeline)
    retried = (await service.press(v1, ALICE, now=EDGE + 0.5)).submission
    assert retried is not None and not retried.duplicate


async def test_the_result_keeps_the_notes_and_says_it_is_a_variation(pipeline: Pipeline) -> None:
    await announce_worker(pipeline)
    service = pipeline.runtime.service
    queued = await service.imagine("a harbour --ar 16:9 --n 1", ALICE)
    stored = await service.queue.load(queued.request_id)
    assert stored.notes == queued.notes and any("16:9 became" in note for note in stored.notes)
    image = StoredImage(key="images/aa/x.png", url="file:///x.png", width=88, height=48, seed=3, index=0)
    done = ResultEvent(
        kind=EventKind.DONE, request_id=stored.request_id, requester=ALICE, model="tiny", images=(image,)
    )
    assert f"\nNote: {stored.notes[0]}" in result_caption(stored, done)

    parent = await finished_grid(service, "a lighthouse", BOB)
    pressed = (await service.press(Button(c.ACTION_VARY, parent, 0), BOB, now=EDGE)).submission
    assert pressed is not None
    child = await service.queue.load(pressed.request_id)
    caption = result_caption(child, done.model_copy(update={"request_id": child.request_id}))
    assert caption.startswith("a lighthouse\nVariation of image 1 · seed 3 · tiny")
