"""Editing a finished image through the service (issue 10): the one-image buttons, the region picker, Remix,
Custom Zoom, the web editor's mask, and every refusal (nothing charged, nothing stored).

Real Redis and local storage; the parent result is left as a worker would leave it, with a real PNG.
"""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from core import constants as c
from core.commands.buttons import Button, decode_button
from core.commands.dialogs import Answer, answer_for, referenced_button
from core.errors import InvalidRequest, NotAllowed, PromptRejected
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.request import Canvas, GenerationRequest, Mode, Platform, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from core.service import ImagineService
from core.settings import QuotaSettings, Settings
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings

ALICE = Requester(platform=Platform.TELEGRAM, user_id="alice", chat_id="-42", community_id="-42")
BOB = Requester(platform=Platform.TELEGRAM, user_id="bob", chat_id="-42", community_id="-42")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Many jobs in flight at once for one user (each test queues several edits that never run)."""
    return with_settings(settings, quotas=QuotaSettings(default_tier="unlimited"))


def png(size: tuple[int, int], colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def busy_worker(pipeline: Pipeline) -> None:
    await WorkerRegistry(pipeline.runtime.redis).beat(
        WorkerInfo("elsewhere", c.QUEUE_GPU, ("tiny",), started_at=time.time())
    )


async def finished(
    service: ImagineService,
    size: tuple[int, int] = (64, 64),
    *,
    n: int = 1,
    shown: tuple[int, ...] = (0,),
    prompt: str = "a lighthouse",
) -> str:
    """A finished request of `n` images of which `shown` were delivered (the others withheld)."""
    parent = await service.imagine(f"{prompt} --n {n}", ALICE)
    key = await service.store.put(png(size), "image/png")
    images = tuple(
        StoredImage(key=key, url="file:///x.png", width=size[0], height=size[1], seed=5 + i, index=i)
        for i in shown
    )
    await service.results.save(
        ResultEvent(kind=EventKind.DONE, request_id=parent.request_id, requester=ALICE, images=images)
    )
    return parent.request_id


async def used(service: ImagineService) -> int:
    return (await service.admission.quotas.status(ALICE)).used_today


async def queued(service: ImagineService, request_id: str) -> GenerationRequest:
    return await service.queue.load(request_id)


async def test_each_one_image_button_queues_its_own_edit(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service)
    expected = {
        "us": (Mode.UPSCALE_SUBTLE, (128, 128)),
        "uc": (Mode.UPSCALE_CREATIVE, (128, 128)),
        "vl": (Mode.VARIATION, (64, 64)),
        "vs": (Mode.VARIATION, (64, 64)),
    }
    for action, (mode, size) in expected.items():
        pressed = await service.press(Button(action, parent, 0), ALICE)
        assert pressed.submission is not None
        request = await queued(service, pressed.submission.request_id)
        assert (request.mode, (request.width, request.height)) == (mode, size), action
        assert request.parent_id == parent and request.parent_index == 0
    zoom = await service.press(Button(c.ACTION_ZOOM, parent, 0, "150"), ALICE)
    assert zoom.submission is not None
    request = await queued(service, zoom.submission.request_id)
    assert (request.mode, request.canvas, request.width) == (Mode.OUTPAINT, Canvas(zoom=1.5), 64)
    pan = await service.press(Button(c.ACTION_PAN, parent, 0, "l"), ALICE)
    assert pan.submission is not None
    request = await queued(service, pan.submission.request_id)
    assert request.canvas == Canvas(pan="left", pan_fraction=0.5)
    assert (request.width, request.height) == (96, 64)  # grown by half its side, to the left


async def test_vary_region_picker_toggles_statelessly_then_repaints_the_cells(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service, (96, 96))
    opened = await service.press(Button(c.ACTION_VARY_REGION, parent, 0), ALICE)
    assert opened.picker is not None and opened.picker.cells == 0
    top_left = opened.picker.rows[0][0]
    assert len(top_left.encode()) <= 64
    toggled = await service.press(decode_button(top_left.encode()), ALICE)  # as after a restart
    assert toggled.picker is not None and toggled.picker.cells == 0b1
    middle = toggled.picker.rows[1][1]
    both = await service.press(middle, ALICE)
    assert both.picker is not None and both.picker.cells == 0b10001
    repaint = both.picker.rows[3][0]
    assert repaint.action == c.ACTION_REGION_SUBMIT
    before = await used(service)
    pressed = await service.press(repaint, ALICE)
    assert pressed.submission is not None
    request = await queued(service, pressed.submission.request_id)
    assert request.mode is Mode.INPAINT and request.mask_image is not None
    with Image.open(io.BytesIO(await service.store.get(request.mask_image))) as mask:
        assert mask.size == (96, 96) and mask.mode == "L"
        assert [mask.getpixel(xy) for xy in ((5, 5), (48, 48), (80, 5), (5, 80))] == [255, 255, 0, 0]
    assert await used(service) == before + 1


async def test_region_refusals_say_what_to_change_and_charge_nothing(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service, n=2, shown=(0,))  # image 2 was withheld by the image check
    before = await used(service)
    with pytest.raises(InvalidRequest, match="at least one square"):
        await service.press(Button(c.ACTION_REGION_SUBMIT, parent, 0, "0"), ALICE)
    with pytest.raises(InvalidRequest, match="All nine squares"):
        await service.press(Button(c.ACTION_REGION_SUBMIT, parent, 0, "1ff"), ALICE)
    with pytest.raises(InvalidRequest, match="withheld by the safety check"):
        await service.press(Button(c.ACTION_VARY_REGION, parent, 1), ALICE)
    with pytest.raises(InvalidRequest, match="withheld by the safety check"):
        await service.press(Button(c.ACTION_ZOOM, parent, 1, "200"), ALICE)
    with pytest.raises(InvalidRequest, match="covers nothing"):
        await service.edit_region(ALICE, parent, 0, png((64, 64), (0, 0, 0)))
    with pytest.raises(InvalidRequest, match="covers the whole image"):
        await service.edit_region(ALICE, parent, 0, png((64, 64), (255, 255, 255)))
    with pytest.raises(InvalidRequest, match="The mask is 32×32 but the image is 64×64"):
        await service.edit_region(ALICE, parent, 0, png((32, 32), (255, 255, 255)))
    assert await used(service) == before
    assert await service.queue.recent("telegram:alice", 10) == [parent]  # nothing else was queued


async def test_the_web_editor_mask_is_normalised_and_stored_as_an_image_key(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service, (64, 48))
    drawn = Image.new("RGBA", (64, 48), (0, 0, 0, 0))  # strokes on a transparent layer
    drawn.paste((255, 0, 0, 255), (0, 0, 16, 48))
    buffer = io.BytesIO()
    drawn.save(buffer, "PNG")
    submission = await service.edit_region(ALICE, parent, 0, buffer.getvalue(), "a red door")
    request = await queued(service, submission.request_id)
    assert (request.mode, request.prompt, request.width, request.height) == (
        Mode.INPAINT,
        "a red door",
        64,
        48,
    )
    assert request.mask_image is not None and request.mask_image.startswith("inputs/")
    with Image.open(io.BytesIO(await service.store.get(request.mask_image))) as mask:
        assert (mask.getpixel((3, 3)), mask.getpixel((40, 3))) == (255, 0)


async def test_a_pan_beyond_the_models_side_and_an_upscale_beyond_the_limit_are_refused(
    pipeline: Pipeline,
) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service, (512, 256))  # tiny draws at most 512 a side
    before = await used(service)
    with pytest.raises(InvalidRequest, match="Panning left would make this 512×256 image larger") as refused:
        await service.press(Button(c.ACTION_PAN, parent, 0, "l"), ALICE)
    assert "pan up or down instead" in refused.value.message
    big = await finished(service, (2560, 2048))
    with pytest.raises(InvalidRequest, match="upscale limit of 4096 px a side"):
        await service.press(Button(c.ACTION_UPSCALE_SUBTLE, big, 0), ALICE)
    assert await used(service) == before + 1  # the second parent itself
    up = await service.press(Button(c.ACTION_PAN, parent, 0, "u"), ALICE)  # 256 → 384 fits
    assert up.submission is not None
    assert (await queued(service, up.submission.request_id)).height == 384


async def test_subtle_upscale_is_served_from_the_cache_the_second_time(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service)
    first = await service.upscale_image(parent, 0, ALICE)
    request = await queued(service, first.request_id)
    assert request.seed_explicit and request.upscale_factor == 2
    done = ResultEvent(kind=EventKind.DONE, request_id=first.request_id, requester=ALICE)
    await service.cache.put(request, done)
    again = await service.upscale_image(parent, 0, ALICE)
    assert again.cached and again.request_id != first.request_id


async def test_remix_asks_for_the_prompt_and_checks_the_new_one(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service, prompt="a calm sea")
    await service.preferences.update("telegram", "alice", remix=True)
    zoom = Button(c.ACTION_ZOOM, parent, 0, "200")
    asked = await service.press(zoom, ALICE)
    assert asked.ask is not None and asked.submission is None
    assert asked.ask.prompt == "a calm sea" and asked.ask.wants_prompt and not asked.ask.wants_factor
    assert referenced_button(asked.ask.question) == zoom  # a ForceReply prompt carries the press
    pressed = await service.press(zoom, ALICE, answer=answer_for(zoom, "a stormy sea --no boats"))
    assert pressed.submission is not None
    request = await queued(service, pressed.submission.request_id)
    assert (request.prompt, request.negative_prompt) == ("a stormy sea", "boats")
    with pytest.raises(InvalidRequest, match="--seed can't"):
        await service.press(zoom, ALICE, answer=Answer(prompt="a sea --seed 3"))
    reroll = await service.press(Button(c.ACTION_REROLL, parent), ALICE)
    assert reroll.ask is not None  # 🔄 remixes too; U and upscales never ask
    assert (await service.press(Button(c.ACTION_UPSCALE_SUBTLE, parent, 0), ALICE)).submission is not None


async def test_a_remixed_prompt_is_moderated_like_a_new_one(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service)
    before = await used(service)
    with pytest.raises(PromptRejected):
        await service.press(
            Button(c.ACTION_VARY_STRONG, parent, 0), ALICE, answer=Answer(prompt="nude woman")
        )
    assert await used(service) == before


async def test_custom_zoom_asks_a_factor_and_refuses_one_out_of_range(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service)
    custom = Button(c.ACTION_ZOOM_CUSTOM, parent, 0)
    asked = await service.press(custom, ALICE)
    assert asked.ask is not None and asked.ask.wants_factor and not asked.ask.wants_prompt
    with pytest.raises(InvalidRequest, match=r"from 1\.1 to 2"):
        await service.press(custom, ALICE, answer=answer_for(custom, "3"))
    pressed = await service.press(custom, ALICE, answer=answer_for(custom, "1,3x"))
    assert pressed.submission is not None
    assert (await queued(service, pressed.submission.request_id)).canvas == Canvas(zoom=1.3)


async def test_someone_elses_edit_buttons_are_refused(pipeline: Pipeline) -> None:
    await busy_worker(pipeline)
    service = pipeline.runtime.service
    parent = await finished(service)
    for button in (Button(c.ACTION_VARY_REGION, parent, 0), Button(c.ACTION_PAN, parent, 0, "r")):
        with pytest.raises(NotAllowed):
            await service.press(button, BOB)
