"""End to end: pressing the buttons under a result, with the real discord.py client."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from core.delivery.events import EventPublisher
from core.keys import REQUEST_KEY
from core.models.result import EventKind, ResultEvent, StoredImage
from tests.bots.discord.conftest import BotRunner, announce_worker, answer, done, queue_depth, queued
from tests.bots.discord.test_bot import OTHER_USER, USER
from tests.emulators.discord_api import DiscordEmulator, Message
from worker.postprocess import make_grid


async def result_of(emulator: DiscordEmulator, token: str) -> Message:
    """The interaction's reply once it carries an image."""
    return await emulator.result(token, 60)


def png_of(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def test_someone_elses_click_gets_a_notice_and_no_job(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    grid = await result_of(emulator, command.token)
    requests_before = len(await bots.pipeline.runtime.redis.keys(REQUEST_KEY.format(request_id="*")))

    click = await emulator.click(grid, grid.custom_ids()[1], user_id=OTHER_USER)  # V1
    notice = await emulator.wait_for(lambda: emulator.original(click.token), within_s=10)

    assert notice.ephemeral and "Only the person who asked" in notice.content
    assert emulator.calls_for(click.token)[0].payload["type"] == 4
    await asyncio.sleep(0.2)
    assert await queue_depth(bots.pipeline.runtime.redis) == 0
    assert len(await bots.pipeline.runtime.redis.keys(REQUEST_KEY.format(request_id="*"))) == requests_before


async def test_the_buttons_under_a_private_result_answer_privately(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    await answer(emulator, await emulator.slash("settings", {"private": True}, user_id=USER))
    command = await emulator.slash("imagine", {"prompt": "a secret garden", "count": 2}, user_id=USER)
    grid = await result_of(emulator, command.token)
    request_id = grid.files[0].filename.removesuffix(".png")
    # Private replies off again: what counts is that the pressed result was private.
    await answer(emulator, await emulator.slash("settings", {"private": False}, user_id=USER))

    vary = await emulator.click(grid, f"ib:v:{request_id}:0", user_id=USER)
    variation = await result_of(emulator, vary.token)
    upscale = await emulator.click(grid, f"ib:u:{request_id}:1", user_id=USER)
    single = await result_of(emulator, upscale.token)

    assert grid.ephemeral and variation.ephemeral and single.ephemeral
    assert "a secret garden" in variation.content
    seen_by_all = [
        m
        for m in emulator.messages.values()
        if m.channel_id == emulator.channel_id and not m.ephemeral and not m.deleted
    ]
    assert seen_by_all == []  # nothing of it, not even "thinking…", shown to the channel


def cell_colour(grid_png: bytes, cell: int, side: int = 64) -> tuple[int, ...]:
    """The colour in the middle of cell `cell` of a 2-column grid of `side`-pixel images."""
    with Image.open(io.BytesIO(grid_png)) as grid:
        x, y = (cell % 2) * side + side // 2, (cell // 2) * side + side // 2
        return tuple(grid.convert("RGB").getpixel((x, y)))  # type: ignore[arg-type]


async def test_with_one_image_withheld_each_button_points_at_its_own_image(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    """The image check withheld image 2 of 4: the grid shows 1, 3 and 4, and the buttons are U1 U3 U4 / V1 V3
    V4, each pressing onto the picture in the same place of the grid. The DONE event is published as the
    worker would (worker.render.store_outputs), since the tiny model can't draw what trips the check."""
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    service = runtime.service
    await announce_worker(runtime.redis)
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "four lanterns", "count": 4}, user_id=USER)
    request = await queued(bots, command)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    pictures = [Image.new("RGB", (64, 64), colour) for colour in colours]
    images = []
    for index in (0, 2, 3):  # image 2 (index 1) was withheld
        data = png_of(pictures[index])
        key = await service.store.put(data, "image/png")
        url = await service.store.url(key)
        images.append(
            StoredImage(
                key=key,
                url=url,
                width=64,
                height=64,
                size_bytes=len(data),
                seed=request.seeds[index],
                index=index,
            )
        )
    grid_png = png_of(make_grid([pictures[i] for i in (0, 2, 3)]))
    grid_key = await service.store.put(grid_png, "image/png")
    event = ResultEvent(
        kind=EventKind.DONE,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        model="tiny",
        images=tuple(images),
        grid=StoredImage(key=grid_key, url=await service.store.url(grid_key), width=128, height=128),
        message="Image 2 didn't pass the safety check and was left out.",
    )
    await service.results.save(event)
    await EventPublisher(runtime.redis).publish(event)

    grid = await result_of(emulator, command.token)
    request_id = request.request_id
    labels = [b["label"] for row in grid.components for b in row["components"]]
    assert labels == ["U1", "U3", "U4", "V1", "V3", "V4", "🔄"]
    assert "Image 2 didn't pass" in grid.content
    upscales = [custom_id for custom_id in grid.custom_ids() if custom_id.startswith("ib:u:")]
    assert upscales == [f"ib:u:{request_id}:{index}" for index in (0, 2, 3)]
    for cell, custom_id in enumerate(upscales):  # the n-th button shows the n-th picture of the grid
        press = await emulator.click(grid, custom_id, user_id=USER)
        shown = await result_of(emulator, press.token)
        assert cell_colour(grid.files[0].data, cell) == cell_colour(shown.files[0].data, 0)
    assert shown.content.startswith(f"Image 4 · 64×64 · seed {request.seeds[3]}")

    vary = await emulator.click(grid, f"ib:v:{request_id}:2", user_id=USER)  # V3
    child = await queued(bots, vary)
    assert (child.parent_id, child.parent_index) == (request_id, 2)
    assert child.source_image == images[1].key  # image 3's own file


async def test_every_press_is_answered_however_malformed(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a lone tree", "count": 1}, user_id=USER)
    request = await queued(bots, command)
    await EventPublisher(runtime.redis).publish(await done(runtime.service, request))
    result = await result_of(emulator, command.token)
    request_id = request.request_id
    depth = await queue_depth(runtime.redis)

    forged = [
        "garbage",
        "x" * 100,
        f"ib:v:{request_id}:9",  # an image index out of range
        f"ib:zz:{request_id}:0",  # an action nobody knows
        f"ib:v:{request_id}",  # an index missing
        f"ib:v:{request_id}:3",  # well formed, but not a button of this one-image result
        "ib:u:abcdefghijklmnop:0",  # another request's id, not on this message
    ]
    for custom_id in forged:
        press = await emulator.click(result, custom_id, user_id=USER, forged=True)
        notice = await answer(emulator, press)
        assert notice.ephemeral and "isn't one I know" in notice.content, custom_id

    await runtime.redis.delete(REQUEST_KEY.format(request_id=request_id))  # expired meanwhile
    press = await emulator.click(result, f"ib:v:{request_id}:0", user_id=USER)
    stale = await answer(emulator, press)
    assert stale.ephemeral and "unknown or too old" in stale.content
    await asyncio.sleep(0.3)  # a second answer, had both the button and the catch-all taken the press
    assert [call.status for call in emulator.calls_for(press.token, "callback")] == [200]
    assert await queue_depth(runtime.redis) == depth  # no job from any of them
