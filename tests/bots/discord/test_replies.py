"""End to end: how results are shown (spoilers, embeds past the upload limit), /cancel and /help."""

from __future__ import annotations

import io

from PIL import Image

from core.models.result import EventKind, ResultEvent, StoredImage
from core.settings import StorageSettings
from tests.bots.discord.conftest import BotRunner, announce_worker, answer, queue_depth, request_ids
from tests.emulators.discord_api import DiscordEmulator
from tests.settings import with_settings

USER = 4242
OTHER = 5151
CDN = "http://cdn.example/images"


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 140, 90)).save(out, "PNG")
    return out.getvalue()


async def test_a_spoiler_image_is_attached_as_a_spoiler(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    """The worker flags an image as a spoiler (policy "spoiler" in an age-restricted channel); here its
    DONE event is published as the worker would, since the tiny model can't draw what trips the detector."""
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start()
    command = await emulator.slash(
        "imagine", {"prompt": "a beach", "count": 1}, user_id=USER, channel_id=emulator.nsfw_channel_id
    )
    assert (await answer(emulator, command)).content.startswith("Queued")
    (request_id,) = await request_ids(runtime.redis)
    request = await runtime.service.queue.load(request_id)
    data = png(64, 64)
    key = await runtime.service.store.put(data, "image/png")
    image = StoredImage(
        key=key,
        url=await runtime.service.store.url(key),
        width=64,
        height=64,
        size_bytes=len(data),
        seed=request.seeds[0],
        index=0,
        spoiler=True,
    )
    event = ResultEvent(
        kind=EventKind.DONE,
        request_id=request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        model="tiny",
        images=(image,),
    )
    await runtime.service.results.save(event)
    await runtime.service.events.publish(event)

    result = await emulator.result(command.token, 20)

    assert [upload.filename for upload in result.files] == [f"SPOILER_{request_id}.png"]
    assert result.files[0].data == data


async def test_a_grid_larger_than_the_upload_limit_is_an_embed_of_its_cdn_url(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, settings = discord_emulator, bots.pipeline.settings
    emulator.attachment_size_limit = 200  # bytes: no grid or preview fits
    storage = StorageSettings(local_dir=settings.storage.local_dir, public_base_url=CDN)
    await bots.pipeline.start_worker(settings=with_settings(settings, storage=storage))
    await bots.start()

    command = await emulator.slash("imagine", {"prompt": "a canyon", "count": 2}, user_id=USER)
    result = await emulator.wait_for(lambda: (m := emulator.original(command.token)) and m.embeds and m, 30)

    assert result.files == []
    url = result.embeds[0]["image"]["url"]
    assert url.startswith(CDN + "/") and url.endswith(".png")
    links = [b["url"] for row in result.components for b in row["components"] if b.get("url")]
    assert links == [url]  # the "Full size" button points at the grid on the CDN
    assert "a canyon" in result.content


async def test_cancel_without_an_id_cancels_my_latest_queued_request(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await announce_worker(redis)
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a barn", "count": 1}, user_id=USER)
    assert (await answer(emulator, command)).content.startswith("Queued")

    nothing = await answer(emulator, await emulator.slash("cancel", user_id=OTHER))
    cancelled = await answer(emulator, await emulator.slash("cancel", user_id=USER))
    reply = await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.content.startswith("Cancelled") and m, 20
    )

    assert nothing.ephemeral and "no recent requests" in nothing.content
    assert cancelled.ephemeral and cancelled.content == "Cancelled."
    assert reply.content == "Cancelled before it started."
    assert await queue_depth(redis) == 0


async def test_help_is_private_and_shows_admin_commands_to_moderators(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.start()

    member = await answer(emulator, await emulator.slash("help", user_id=USER))
    moderator = await answer(
        emulator,
        await emulator.slash("help", user_id=OTHER, roles=(emulator.mod_role,)),
    )

    assert member.ephemeral and "**/imagine**" in member.content and "**/quota**" in member.content
    assert "--ar" in member.content  # the grammar's flags
    assert "/admin" not in member.content
    assert moderator.ephemeral and "**/admin**" in moderator.content
