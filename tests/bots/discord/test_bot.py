"""End to end: the real discord.py client against the emulator, a real Redis and the tiny-model worker."""

from __future__ import annotations

import asyncio
import io
import logging
import re

import pytest
from arq.connections import ArqRedis
from PIL import Image
from pydantic import SecretStr

from bots.discord import run_discord_bot
from cli.redaction import Redactor, install
from core import constants as c
from core.delivery.events import stream_key
from core.errors import ConfigError
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import REQUEST_KEY
from core.models.request import Platform
from core.models.result import EventKind, ResultEvent
from core.settings import DiscordSettings
from tests.bots.discord.conftest import BotRunner, answer, discord_settings
from tests.emulators.discord_api import (
    BOT_TOKEN,
    DiscordEmulator,
    Message,
)
from tests.settings import with_settings

USER = 4242
OTHER_USER = 5151


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


async def result_of(emulator: DiscordEmulator, token: str) -> Message:
    """The interaction's reply once it carries an image."""
    return await emulator.result(token, 20)


async def queue_depth(bots: BotRunner) -> int:
    return int(await bots.pipeline.runtime.redis.zcard(c.QUEUE_GPU))


async def test_imagine_then_vary_then_upscale(bots: BotRunner, discord_emulator: DiscordEmulator) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()

    command = await emulator.slash("imagine", {"prompt": "a lighthouse at dusk", "seed": 7}, user_id=USER)
    grid = await result_of(emulator, command.token)

    calls = emulator.calls_for(command.token)
    assert calls[0].route == "callback" and calls[0].payload["type"] == 5  # deferred at once
    assert calls[1].route == "original" and calls[1].payload["content"].startswith(("Queued", "I'm already"))
    assert "a lighthouse at dusk" in grid.content and "seed 7, 8, 9, 10" in grid.content
    assert image_size(grid.files[0].data) == (128, 128)  # 2×2 grid of 64×64
    request_id = grid.files[0].filename.removesuffix(".png")
    ids = grid.custom_ids()
    assert ids == [
        *(f"ib:u:{request_id}:{i}" for i in range(4)),
        *(f"ib:v:{request_id}:{i}" for i in range(4)),
        f"ib:r:{request_id}",
    ]
    assert all(len(custom_id) <= 100 for custom_id in ids)
    assert [len(row["components"]) for row in grid.components] == [4, 5]
    assert not any(b.get("url") for row in grid.components for b in row["components"])  # file:// → no link

    vary = await emulator.click(grid, f"ib:v:{request_id}:2", user_id=USER)
    variation = await result_of(emulator, vary.token)
    variation_id = variation.files[0].filename.removesuffix(".png")
    assert variation_id != request_id
    stored = await bots.pipeline.runtime.service.queue.load(variation_id)
    assert (stored.mode, stored.parent_id, stored.parent_index) == ("variation", request_id, 2)

    upscale = await emulator.click(variation, f"ib:u:{variation_id}:0", user_id=USER)
    single = await result_of(emulator, upscale.token)
    assert image_size(single.files[0].data) == (64, 64)
    assert single.custom_ids() == [
        f"ib:us:{variation_id}:0",
        f"ib:uc:{variation_id}:0",
        f"ib:vl:{variation_id}:0",
        f"ib:vs:{variation_id}:0",
        f"ib:vr:{variation_id}:0",
        f"ib:zo:{variation_id}:0:200",
        f"ib:zo:{variation_id}:0:150",
        f"ib:zc:{variation_id}:0",
        *(f"ib:pn:{variation_id}:0:{d}" for d in "lrud"),
        f"ib:de:{variation_id}:0",
        f"ib:i:{variation_id}",
        f"ib:dl:{variation_id}",
    ]
    assert [
        call for call in emulator.calls_for(upscale.token, "original") if call.files
    ]  # a multipart upload
    assert await queue_depth(bots) == 0


async def test_invalid_option_is_an_ephemeral_error_naming_it(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()

    command = await emulator.slash("imagine", {"prompt": "a cat", "steps": 999}, user_id=USER)
    notice = await answer(emulator, command)

    assert notice.ephemeral
    assert "--steps" in notice.content and "999" in notice.content
    callbacks = emulator.calls_for(command.token, "callback")
    assert [call.payload["type"] for call in callbacks] == [4]  # refused at once: no public "thinking…"
    assert await queue_depth(bots) == 0
    assert not await bots.pipeline.runtime.redis.keys(REQUEST_KEY.format(request_id="*"))


async def test_result_finished_while_the_bot_was_down_arrives_once(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    runtime = bots.pipeline.runtime
    # A worker has announced itself but is not taking jobs yet, so the job waits in the queue.
    await WorkerRegistry(runtime.redis).beat(WorkerInfo("announced", c.QUEUE_GPU, ("tiny",), started_at=0.0))
    first = await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a harbour", "count": 1}, user_id=USER)
    await emulator.wait_for(lambda: len(emulator.calls_for(command.token, "original")) >= 1)
    assert await queue_depth(bots) == 1
    await bots.stop(first)

    await bots.pipeline.start_worker()
    request_id = _request_id_of(await runtime.redis.keys(REQUEST_KEY.format(request_id="*")))
    async with asyncio.timeout(20):
        await _published(runtime.redis, request_id, EventKind.DONE)
    original = emulator.original(command.token)
    assert original is not None and original.files == []  # nobody delivered it yet

    await bots.start()
    grid = await result_of(emulator, command.token)
    await asyncio.sleep(0.5)
    with_files = [call for call in emulator.calls_for(command.token, "original") if call.files]
    assert len(with_files) == 1
    assert image_size(grid.files[0].data) == (64, 64)


async def _published(redis: ArqRedis, request_id: str, kind: EventKind) -> None:
    """Wait until the worker has put `kind` for the request on the Discord stream."""
    last = "0"
    while True:
        for _, entries in await redis.xread({stream_key(Platform.DISCORD): last}, block=1000) or []:
            for entry_id, fields in entries:
                last = entry_id
                event = ResultEvent.model_validate_json(fields[b"event"])
                if (event.request_id, event.kind) == (request_id, kind):
                    return


def _request_id_of(keys: list[bytes]) -> str:
    assert len(keys) == 1
    return keys[0].decode().rsplit(":", 1)[-1]


async def test_result_after_the_token_expired_goes_to_the_channel(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start(token_lifetime_s=0.0)
    emulator.rate_limit("channel", times=1, retry_after=0.1, is_global=True)  # the bot token's global limit
    command = await emulator.slash(
        "imagine", {"prompt": "a mill", "count": 1}, user_id=USER, channel_id=emulator.nsfw_channel_id
    )

    posted = await emulator.wait_for(lambda: emulator.channel_messages(emulator.nsfw_channel_id), within_s=20)

    assert posted[0].content.startswith(f"<@{USER}> a mill")
    assert image_size(posted[0].files[0].data) == (64, 64)
    assert len(posted[0].custom_ids()) == 3  # U1, V1, 🔄
    assert not any(call.files for call in emulator.calls_for(command.token, "original"))
    assert [call.route for call in emulator.rejected] == ["channel"]
    request_id = posted[0].files[0].filename.removesuffix(".png")
    stored = await bots.pipeline.runtime.service.queue.load(request_id)
    assert stored.requester.age_restricted  # asked in an NSFW channel

    # A moderator's /admin delete removes it from the channel (with the bot token: the interaction's is gone).
    delete = await emulator.slash(
        "admin",
        {"request": request_id},
        subcommand="delete",
        user_id=OTHER_USER,
        roles=(emulator.mod_role,),
    )
    answered = await answer(emulator, delete)
    assert "Removed 1 of 1 message(s)" in answered.content and posted[0].deleted


async def test_a_private_result_after_the_token_expired_goes_to_the_users_dms(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start(token_lifetime_s=0.0)
    emulator.closed_dms.add(OTHER_USER)
    for user in (USER, OTHER_USER):
        private = await emulator.slash("settings", {"private": True}, user_id=user)
        await emulator.wait_for(lambda: emulator.original(private.token))  # noqa: B023

    mine = await emulator.slash("imagine", {"prompt": "a secret garden", "count": 1}, user_id=USER)
    dms = await emulator.wait_for(lambda: emulator.dm_messages(USER), within_s=20)
    await emulator.slash("imagine", {"prompt": "a hidden cove", "count": 1}, user_id=OTHER_USER)
    refused = await emulator.wait_for(
        lambda: [call for call in emulator.calls if call.route == "channel" and call.status == 403],
        within_s=20,
    )

    thinking = emulator.original(mine.token)
    assert thinking is not None and thinking.ephemeral  # the command's own reply was private
    assert dms[0].content.startswith("a secret garden") and dms[0].files and len(dms[0].custom_ids()) == 3
    assert f"<@{USER}>" not in dms[0].content
    assert refused[0].path == f"/channels/{emulator.dm_channels[OTHER_USER]}/messages"
    assert emulator.channel_messages(emulator.channel_id) == []  # never posted where others see it
    await asyncio.sleep(0.3)  # a refused DM is not retried into the channel either
    assert emulator.channel_messages(emulator.channel_id) == []


async def test_rate_limited_edit_is_retried_and_the_reply_lands(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    emulator.rate_limit("original", times=2, retry_after=0.1)

    command = await emulator.slash("imagine", {"prompt": "a kite", "count": 1}, user_id=USER, guild=False)
    grid = await result_of(emulator, command.token)

    assert len(emulator.rejected) == 2
    assert image_size(grid.files[0].data) == (64, 64)
    request_id = grid.files[0].filename.removesuffix(".png")
    stored = await bots.pipeline.runtime.service.queue.load(request_id)
    assert stored.requester.community_id is None  # a DM


async def test_sync_publishes_commands_and_the_token_is_never_logged(
    bots: BotRunner, discord_emulator: DiscordEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = discord_settings(bots.pipeline.settings, discord_emulator)
    install(Redactor.from_settings(settings), [caplog.handler])  # as `imagebot discord` does
    runtime = bots.pipeline.runtime

    await asyncio.wait_for(run_discord_bot(settings, runtime.service, runtime.redis, sync=True), 10)

    names = {command["name"] for command in discord_emulator.commands["global"]}
    assert names == {
        "imagine",
        "vary",
        "upscale",
        "settings",
        "cancel",
        "quota",
        "loras",
        "help",
        "admin",
        "Vary this image",
        "styles",
        "history",
        "info",
        "describe",
        "How was this made?",
        "Describe this image",
        "forget",
    }
    imagine = next(cmd for cmd in discord_emulator.commands["global"] if cmd["name"] == "imagine")
    options = {option["name"]: option for option in imagine["options"]}
    assert (
        options["prompt"]["required"] and options["model"]["autocomplete"] and options["lora"]["autocomplete"]
    )
    assert [choice["value"] for choice in options["aspect"]["choices"]][:2] == ["1:1", "4:3"]
    assert discord_emulator.identifies == 0  # no gateway session for a sync
    assert caplog.records and BOT_TOKEN not in caplog.text


async def test_missing_token_is_a_config_error(bots: BotRunner) -> None:
    settings = with_settings(bots.pipeline.settings, discord=DiscordSettings(token=SecretStr(" ")))
    runtime = bots.pipeline.runtime
    with pytest.raises(ConfigError, match=re.escape("IMAGEBOT_DISCORD__TOKEN")):
        await run_discord_bot(settings, runtime.service, runtime.redis)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(out, "PNG")
    return out.getvalue()


async def test_vary_an_upload_and_the_context_menu_start_from_the_image(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    service = bots.pipeline.runtime.service

    url = emulator.add_attachment("photo.png", png(96, 64))
    command = await emulator.slash(
        "vary", {"prompt": "as a watercolour"}, attachments={"image": url}, user_id=USER
    )
    result = await result_of(emulator, command.token)
    stored = await service.queue.load(result.files[0].filename.removesuffix(".png"))
    assert stored.mode == "img2img" and stored.source_image and stored.n == 1
    assert stored.width > stored.height  # the upload's landscape aspect was kept

    menu = await emulator.message_command("Vary this image", result, user_id=USER)
    again = await result_of(emulator, menu.token)
    from_result = await service.queue.load(again.files[0].filename.removesuffix(".png"))
    assert from_result.mode == "img2img" and from_result.prompt == "as a watercolour"  # from its buttons

    posted = emulator.user_message(emulator.channel_id, [result.files[0]], content="a red barn", user_id=USER)
    menu = await emulator.message_command("Vary this image", posted, user_id=USER)
    third = await result_of(emulator, menu.token)
    from_text = await service.queue.load(third.files[0].filename.removesuffix(".png"))
    assert from_text.prompt == "a red barn"


async def test_settings_are_private_and_apply_to_imagine(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()

    command = await emulator.slash("settings", {"aspect": "16:9", "count": 1}, user_id=USER)
    reply = await emulator.wait_for(lambda: emulator.original(command.token))
    assert reply.ephemeral and "16:9" in reply.content

    bad = await emulator.slash("settings", {"count": 9}, user_id=USER)
    refused = await emulator.wait_for(lambda: emulator.original(bad.token))
    assert refused.ephemeral and "1 to 4" in refused.content

    imagine = await emulator.slash("imagine", {"prompt": "a dune"}, user_id=USER)
    result = await result_of(emulator, imagine.token)
    stored = await bots.pipeline.runtime.service.queue.load(result.files[0].filename.removesuffix(".png"))
    assert stored.n == 1 and stored.width > stored.height


async def test_interaction_tokens_never_reach_the_logs(
    bots: BotRunner, discord_emulator: DiscordEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.bots.discord.conftest import announce_worker

    caplog.set_level(logging.DEBUG)
    settings = discord_settings(bots.pipeline.settings, discord_emulator)
    install(Redactor.from_settings(settings), [caplog.handler])  # as `imagebot discord` does
    await announce_worker(bots.pipeline.runtime.redis)
    await bots.start()
    command = await discord_emulator.slash("imagine", {"prompt": "a quiet harbour"}, user_id=USER)
    await discord_emulator.wait_for(
        lambda: (m := discord_emulator.original(command.token)) and m.content.startswith("Queued"),
        within_s=20,
    )
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("discord"))
    assert (
        "/interactions/" in ours and "'token': '<redacted>'" in ours
    )  # discord.py logged URLs and payloads…
    assert command.token not in ours  # …with the interaction's token masked
    assert BOT_TOKEN not in caplog.text
