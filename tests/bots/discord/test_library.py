"""/styles, /history, /info (command, context menu and button), delete, /describe and /admin check and style on
Discord, end to end with the real discord.py client against the emulator, over the real service and Redis."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from core import constants as c
from core.delivery.events import EventPublisher
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.settings import CaptionerSettings, PrivilegeSettings, Settings
from core.storage.factory import build_store
from moderation.factory import build_image_moderator
from tests.bots.discord.conftest import BotRunner, announce_worker, answer, done, queued
from tests.bots.discord.test_admin import MOD, USER, admin, roles_of
from tests.emulators.discord_api import DiscordEmulator, Message
from tests.settings import with_settings
from worker.captioner import TransformersCaptioner
from worker.context import WorkerContext
from worker.describing import describe
from worker.tiny_captioner import build_tiny_captioner


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(settings, privileges=PrivilegeSettings(discord_mod_roles=["Helpers"]))


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(out, "PNG")
    return out.getvalue()


async def finished(bots: BotRunner, prompt: str) -> tuple[str, Message]:
    """USER imagines `prompt`; its result (as a worker would publish it) is delivered; (request id, message)."""
    emulator, service = bots.emulator, bots.pipeline.runtime.service
    command = await emulator.slash("imagine", {"prompt": prompt, "count": 1}, user_id=USER)
    request = await queued(bots, command)
    event = await done(service, request)
    await service.results.save(event)
    await EventPublisher(bots.pipeline.runtime.redis).publish(event)
    message = await emulator.result(command.token, 30)
    return request.request_id, message


async def test_styles_and_an_unknown_style(bots: BotRunner, discord_emulator: DiscordEmulator) -> None:
    emulator = discord_emulator
    await bots.start()
    added = await admin(
        emulator,
        "style add",
        {"name": "ink", "template": "ink drawing of {prompt}", "avoid": "colour"},
        user_id=MOD,
    )
    assert added.content == "Added the style “ink”: /imagine a fox --style ink"
    listed = await answer(emulator, await emulator.slash("styles", user_id=USER))
    assert (
        listed.ephemeral
        and "ink (this community's): ink drawing of {prompt} · avoids: colour" in listed.content
    )
    refused = await answer(
        emulator, await emulator.slash("imagine", {"prompt": "a fox --style oil"}, user_id=USER)
    )
    assert refused.ephemeral and refused.content == "There is no style “oil”. Styles here: ink."
    plain = await admin(emulator, "style add", {"name": "x", "template": "x {prompt}"}, user_id=USER)
    assert "Only mods can use /admin style" in plain.content


async def test_history_info_and_delete(bots: BotRunner, discord_emulator: DiscordEmulator) -> None:
    emulator = discord_emulator
    await announce_worker(bots.pipeline.runtime.redis)
    await bots.start()
    first_id, _ = await finished(bots, "a red kite")
    second_id, second = await finished(bots, "a blue boat")

    page = await answer(emulator, await emulator.slash("history", user_id=USER))
    assert page.ephemeral and page.content.startswith("Your results, page 1 of 1:\n1. a blue boat")
    assert page.custom_ids() == [
        f"ib:sh:{second_id}", f"ib:i:{second_id}", f"ib:dl:{second_id}",
        f"ib:sh:{first_id}", f"ib:i:{first_id}", f"ib:dl:{first_id}",
    ]  # fmt: skip

    show = await emulator.click(page, f"ib:sh:{first_id}", user_id=USER)
    shown = await emulator.result(show.token, 20)
    assert "a red kite" in shown.content and f"ib:dl:{first_id}" in shown.custom_ids()

    info = await answer(emulator, await emulator.click(page, f"ib:i:{second_id}", user_id=USER))
    assert "Make it again with:\n/imagine a blue boat --size" in info.content
    assert "No Content Credentials (C2PA) in this file." in info.content  # the test's PNG was never signed
    by_id = await answer(emulator, await emulator.slash("info", {"request": first_id}, user_id=USER))
    assert by_id.ephemeral and by_id.content.startswith(
        f"Result {first_id}\nMake it again with:\n/imagine a red kite"
    )
    by_menu = await answer(
        emulator, await emulator.message_command("How was this made?", second, user_id=USER)
    )
    assert by_menu.content.startswith(f"Result {second_id}")

    other = await answer(
        emulator, await emulator.click(page, f"ib:dl:{second_id}", user_id=4343, forged=False)
    )
    assert "Only the person who asked" in other.content
    gone = await answer(emulator, await emulator.click(page, f"ib:dl:{second_id}", user_id=USER))
    assert gone.content.startswith(f"Deleted {second_id}: its images are gone")
    assert emulator.messages[second.id].deleted
    after = await answer(emulator, await emulator.slash("history", user_id=USER))
    assert second_id not in after.content and "1. a red kite" in after.content


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_captioner(tmp_path_factory.mktemp("models") / "tiny-blip")


async def test_describe_an_attachment_and_imagine_a_suggestion(
    bots: BotRunner, discord_emulator: DiscordEmulator, tiny_blip: Path
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await WorkerRegistry(runtime.redis).beat(WorkerInfo("gpu", c.QUEUE_GPU, ("tiny", c.CAPTIONER), 0.0))
    await bots.start()
    not_a_picture = emulator.add_attachment("notes.txt", b"hello", content_type="text/plain")
    refused = await answer(
        emulator, await emulator.slash("describe", attachments={"image": not_a_picture}, user_id=USER)
    )
    assert refused.ephemeral and refused.content == "Please attach a picture (PNG, JPEG or WebP) to describe."

    photo = emulator.add_attachment("photo.png", png((200, 40, 40)))
    command = await emulator.slash("describe", attachments={"image": photo}, user_id=USER)
    await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.content.startswith("Queued"), 20
    )
    request_id = await runtime.service.last_request(_requester(USER))
    settings = bots.pipeline.settings
    worker = WorkerContext(
        settings=settings,
        queue_name=c.QUEUE_GPU,
        redis=runtime.redis,
        store=build_store(settings),
        backends={},
        image_moderator=build_image_moderator(settings),
        captioner=TransformersCaptioner(CaptionerSettings(local_model=str(tiny_blip), max_new_tokens=8)),
    )
    assert await describe({"imagebot": worker, "job_try": 1}, request_id) == "described"
    described = await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.content.startswith("Prompts") and m, 20
    )
    labels = [b["label"] for row in described.components for b in row["components"]]
    assert labels == ["Imagine 1", "Imagine 2", "Imagine 3", "Imagine 4"]
    suggestion = described.content.splitlines()[2][3:]

    await announce_worker(runtime.redis)
    press = await emulator.click(described, f"ib:ds:{request_id}:1", user_id=USER)
    imagined = await queued(bots, press)
    assert imagined.prompt == suggestion


def _requester(user_id: int):  # type: ignore[no-untyped-def]
    from core.models.request import Platform, Requester

    return Requester(platform=Platform.DISCORD, user_id=str(user_id), chat_id="0")


async def test_admin_check_reads_an_attachment(bots: BotRunner, discord_emulator: DiscordEmulator) -> None:
    emulator = discord_emulator
    await bots.start()
    image = emulator.add_attachment("post.png", png((10, 200, 10)))
    checked = await admin(emulator, "check", attachments={"image": image}, user_id=MOD)
    assert checked.content == (
        "What this image says about itself:\nNo Content Credentials (C2PA) in this file.\n"
        "No imagebot watermark found."
    )
    refused = await admin(emulator, "check", attachments={"image": image}, user_id=USER)
    assert refused.content == "Only mods can use /admin check."
    assert roles_of(emulator, USER) == ()
