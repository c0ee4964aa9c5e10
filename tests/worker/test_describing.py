"""/describe end to end on a real worker: the tiny local captioner, OpenAI's vision model on the emulator, and
the refusals that charge nothing."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from arq import Retry
from PIL import Image
from pydantic import SecretStr

from cli.runtime import open_runtime
from core import constants as c
from core.commands.buttons import Button
from core.delivery.events import follow
from core.errors import BackendUnavailable, GenerationFailed, InvalidRequest
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import DESCRIBE_KEY, REQUEST_TTL_S
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.models.verdict import AllowAll
from core.settings import Settings
from core.storage.factory import build_store
from tests.drawings import figure
from tests.emulators.openai_api import OpenAIEmulator
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from worker.captioner import Suggestions
from worker.context import WorkerContext
from worker.describing import describe
from worker.tiny_captioner import build_tiny_captioner

ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c")


def png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


async def ended(pipeline: Pipeline, request_id: str) -> ResultEvent:
    async with asyncio.timeout(120):
        async for event in follow(pipeline.runtime.redis, Platform.CLI):
            if event.request_id == request_id and event.terminal:
                return event
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_captioner(tmp_path_factory.mktemp("models") / "tiny-blip")


@pytest.fixture
async def local(settings: Settings, redis: object, tiny_blip: Path) -> AsyncIterator[Pipeline]:
    configured = with_settings(settings, captioner={"local_model": str(tiny_blip), "max_new_tokens": 8})
    async with open_runtime(configured) as runtime:
        running = Pipeline(runtime)
        await running.start_worker()
        try:
            yield running
        finally:
            await running.stop_workers()


async def used_today(pipeline: Pipeline) -> int:
    return (await pipeline.runtime.service.admission.quotas.status(ALICE)).used_today


async def test_a_local_describe_gives_four_prompts_whose_buttons_imagine_them(local: Pipeline) -> None:
    service = local.runtime.service
    submission = await service.describe(ALICE, image=png((200, 40, 40)), source_id="m1")
    assert submission.queue == c.QUEUE_GPU
    event = await ended(local, submission.request_id)
    assert event.kind is EventKind.DESCRIBED, event.message
    assert len(event.suggestions) == 4 and len(set(event.suggestions)) == 4
    assert event.backend.startswith("transformers:")
    assert await used_today(local) == 1  # a describe costs one image from the daily quota
    stored = DESCRIBE_KEY.format(request_id=submission.request_id)
    assert 0 < await local.runtime.redis.ttl(stored) <= REQUEST_TTL_S

    pressed = await service.press(Button(c.ACTION_SUGGESTION, submission.request_id, 2), ALICE)
    assert pressed.submission is not None
    made = await ended(local, pressed.submission.request_id)
    assert made.kind is EventKind.DONE
    assert (await service.queue.load(made.request_id)).prompt == event.suggestions[2]

    # A result's own image, by its button (the full-size view's "Describe").
    again = await service.press(Button(c.ACTION_DESCRIBE, made.request_id, 0), ALICE)
    assert again.submission is not None
    assert (await ended(local, again.submission.request_id)).kind is EventKind.DESCRIBED


async def test_refused_describes_charge_nothing(local: Pipeline) -> None:
    service = local.runtime.service
    with pytest.raises(InvalidRequest, match="couldn't read that file as an image"):
        await service.describe(ALICE, image=b"%PDF-1.4 not a picture")
    with pytest.raises(InvalidRequest, match="at most 8192 px"):
        await service.describe(ALICE, image=png((0, 0, 0), (9000, 8)))
    withheld = await service.describe(
        ALICE, image=_figure_png(), source_id="m2"
    )  # the image check refuses it
    event = await ended(local, withheld.request_id)
    assert event.kind is EventKind.REFUSED and "image check" in (event.message or "")
    assert await used_today(local) == 0
    made = await ended(local, (await service.imagine("a kite --n 1", ALICE)).request_id)
    with pytest.raises(InvalidRequest, match="isn't available"):
        await service.describe(
            ALICE, result_id=made.request_id, index=3
        )  # no image 4: withheld or never made
    assert await used_today(local) == 1  # the kite only


def _figure_png() -> bytes:
    out = io.BytesIO()
    figure(False).save(out, format="PNG")
    return out.getvalue()


async def test_without_a_describer_the_user_hears_so_and_nothing_is_charged(pipeline: Pipeline) -> None:
    with pytest.raises(BackendUnavailable, match="No image describer"):
        await pipeline.runtime.service.describe(ALICE, image=png((1, 2, 3)))
    assert await used_today(pipeline) == 0


async def test_openai_describes_when_no_local_captioner_runs(
    settings: Settings, redis: object, openai_emulator: OpenAIEmulator
) -> None:
    configured = with_settings(
        settings, openai={"api_key": SecretStr(openai_emulator.api_key), "base_url": openai_emulator.base_url}
    )
    async with open_runtime(configured) as runtime:
        cloud = Pipeline(runtime)
        await cloud.start_worker(c.QUEUE_CLOUD)
        try:
            submission = await runtime.service.describe(ALICE, image=png((40, 60, 200)))
            assert submission.queue == c.QUEUE_CLOUD
            event = await ended(cloud, submission.request_id)
        finally:
            await cloud.stop_workers()
    assert event.kind is EventKind.DESCRIBED and event.backend == "openai:gpt-4o-mini"
    assert event.suggestions == (
        "A blue abstract painting, 96 by 64",
        "Minimal blue colour field, soft gradient",
        "A blue wall in morning light, photograph",
        "A flat blue background, vector art",
    )
    sent = openai_emulator.requests_to("/v1/chat/completions")[0].body
    parts = sent["messages"][0]["content"]
    assert sent["model"] == "gpt-4o-mini" and parts[1]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )


class BrokenCaptioner:
    """A local captioner whose model call fails every time (a GPU fault, say)."""

    name = "transformers:broken"

    async def suggest(self, image: bytes) -> Suggestions:
        raise GenerationFailed("the captioning model crashed")

    async def close(self) -> None:
        pass


async def test_a_local_captioner_that_keeps_failing_hands_the_describe_to_openai(
    settings: Settings, redis: object, openai_emulator: OpenAIEmulator
) -> None:
    configured = with_settings(
        settings, openai={"api_key": SecretStr(openai_emulator.api_key), "base_url": openai_emulator.base_url}
    )
    async with open_runtime(configured) as runtime:
        await WorkerRegistry(runtime.redis).beat(WorkerInfo("gpu", c.QUEUE_GPU, ("tiny", c.CAPTIONER), 0.0))
        submission = await runtime.service.describe(ALICE, image=png((200, 40, 40)))
        assert submission.queue == c.QUEUE_GPU
        local = WorkerContext(
            settings=configured,
            queue_name=c.QUEUE_GPU,
            redis=runtime.redis,
            store=build_store(configured),
            backends={},
            image_moderator=AllowAll(),
            captioner=BrokenCaptioner(),
        )
        tries = configured.worker.max_tries
        with pytest.raises(Retry):  # a try left: arq runs it again
            await describe({"imagebot": local, "job_try": tries - 1}, submission.request_id)
        assert await describe({"imagebot": local, "job_try": tries}, submission.request_id) == "fallback"
        cloud = Pipeline(runtime)
        await cloud.start_worker(c.QUEUE_CLOUD)
        try:
            event = await ended(cloud, submission.request_id)
        finally:
            await cloud.stop_workers()
    assert event.kind is EventKind.DESCRIBED and event.backend == "openai:gpt-4o-mini"
    assert event.suggestions[0] == "A red abstract painting, 96 by 64"
