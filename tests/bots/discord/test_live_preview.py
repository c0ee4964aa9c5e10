"""The worker's live preview in the command's reply: uploaded with the progress edit, replaced by the result.

No worker renders here: the test publishes the worker's events itself, a PROGRESS event carrying a live preview
(core.models.result.ResultEvent.live_preview) as the worker does once the image check has let it through.
"""

from __future__ import annotations

import base64
import io

from PIL import Image

from core.delivery.events import EventPublisher
from core.governance.preferences import PreferenceStore
from core.models.request import GenerationRequest
from core.models.result import LIVE_PREVIEW_PREFIX, EventKind, ResultEvent
from tests.bots.discord.conftest import BotRunner, announce_worker, done, edits, queued
from tests.emulators.discord_api import LIVE_PREVIEW_FILE, DiscordEmulator
from tests.settings import with_settings

USER = 4242
OTHER = 4343


def jpeg(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def progress(request: GenerationRequest, step: int, preview: bytes | None) -> ResultEvent:
    return ResultEvent(
        kind=EventKind.PROGRESS,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        step=step,
        total_steps=8,
        live_preview=LIVE_PREVIEW_PREFIX + base64.b64encode(preview).decode() if preview else None,
    )


async def test_the_reply_shows_the_live_preview_until_the_result_replaces_it(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    runtime = bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start(progress_interval_s=0.0)
    command = await emulator.slash("imagine", {"prompt": "a windmill", "count": 1}, user_id=USER)
    request = await queued(bots, command)
    publisher = EventPublisher(runtime.redis)

    red = jpeg("red")
    await publisher.publish(progress(request, 2, red))
    reply = await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.files and m, within_s=20
    )
    assert [(f.filename, f.data) for f in reply.files] == [("preview.jpg", red)]
    assert reply.content == "Rendering… 25%"

    await publisher.publish(progress(request, 3, None))  # no new preview: the last one stays
    await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.content == "Rendering… 38%", within_s=20
    )
    shown = emulator.original(command.token)
    assert shown is not None and [f.data for f in shown.files] == [red]

    await publisher.publish(await done(runtime.service, request))
    result = await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.content.startswith("a windmill") and m,
        within_s=20,
    )
    assert result.files and all(f.filename != "preview.jpg" for f in result.files)  # the result replaced it


async def test_a_refused_result_leaves_no_live_preview_behind(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    runtime = bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start(progress_interval_s=0.0)
    command = await emulator.slash("imagine", {"prompt": "a windmill", "count": 1}, user_id=USER)
    request = await queued(bots, command)
    publisher = EventPublisher(runtime.redis)
    await publisher.publish(progress(request, 2, jpeg("blue")))
    await emulator.wait_for(lambda: (m := emulator.original(command.token)) and m.files and m, within_s=20)

    refused = ResultEvent(
        kind=EventKind.REFUSED,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        reason_code="image_refused",
        message="The images didn't pass the safety check.",
    )
    await publisher.publish(refused)
    shown = await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.content.startswith("The images") and m,
        within_s=20,
    )
    assert shown.files == []  # the preview went with the progress


async def test_a_user_who_turned_previews_off_gets_text_while_others_in_the_channel_get_previews(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    """/settings previews:False, shown back; in the same channel, that user's render (a real worker on `tiny`)
    shows its progress as text with no preview image, while another user's render shows its preview. Both
    get their results."""
    emulator = discord_emulator
    await bots.start(progress_interval_s=0.0)
    turned = await emulator.slash("settings", {"previews": False}, user_id=USER)
    saved = await emulator.wait_for(lambda: emulator.original(turned.token), within_s=20)
    assert saved.ephemeral and saved.content.startswith("Saved.") and "live previews off" in saved.content
    shown = await emulator.slash("settings", {}, user_id=USER)
    summary = await emulator.wait_for(lambda: emulator.original(shown.token), within_s=20)
    assert "live previews off" in summary.content
    assert not (await PreferenceStore(bots.pipeline.runtime.redis).get("discord", str(USER))).previews

    one_core = {"model_threads": 1, "cpu_turns": False}  # the render's length doesn't swing with the load
    await bots.pipeline.start_worker(settings=with_settings(bots.pipeline.settings, worker=one_core))
    render = "a lighthouse at dusk --steps 50 --size 128x128 --seed {seed}"
    off = await emulator.slash("imagine", {"prompt": render.format(seed=7), "count": 1}, user_id=USER)
    on = await emulator.slash("imagine", {"prompt": render.format(seed=8), "count": 1}, user_id=OTHER)

    off_result = await emulator.result(off.token, 240)
    on_result = await emulator.result(on.token, 240)
    assert off_result.content.startswith("a lighthouse at dusk") and on_result.files

    def previews_uploaded(token: str) -> list[bytes]:
        return [
            f.data for call in edits(emulator, token) for f in call.files if f.filename == LIVE_PREVIEW_FILE
        ]

    def progress_texts(token: str) -> list[str]:
        return [
            c.payload.get("content", "")
            for c in edits(emulator, token)
            if "Rendering" in c.payload.get("content", "")
        ]

    assert previews_uploaded(off.token) == [] and progress_texts(off.token)  # text progress, no picture
    assert previews_uploaded(on.token) and progress_texts(on.token)

    reset = await emulator.slash("settings", {"reset": True}, user_id=USER)  # back on with the other defaults
    again = await emulator.wait_for(lambda: emulator.original(reset.token), within_s=20)
    assert "live previews on" in again.content
