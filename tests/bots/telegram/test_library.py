"""/styles, /history, /info, delete, /describe and /admin check end to end: the real PTB bot against the Bot API
emulator, over the real service, Redis and worker jobs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from core import constants as c
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.settings import CaptionerSettings
from core.storage.factory import build_store
from moderation.factory import build_image_moderator
from tests.bots.telegram.conftest import (
    ALICE,
    ALICE_DM,
    BOB,
    GROUP,
    OLGA,
    TelegramBot,
    last_request,
    render,
    request_id_of,
)
from tests.emulators.telegram_api import Sent
from worker.captioner import TransformersCaptioner
from worker.context import WorkerContext
from worker.describing import describe
from worker.tiny_captioner import build_tiny_captioner


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> Image.Image:
    return Image.new("RGB", size, colour)


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    picture(colour).save(out, format="PNG")
    return out.getvalue()


async def made(bot: TelegramBot, chat, user, prompt: str, colour: tuple[int, int, int]) -> Sent:  # type: ignore[no-untyped-def]
    """`user` imagines `prompt`; a worker draws it in `colour`; the bot's result photo."""
    await bot.announce_idle_worker()
    asked = await bot.emulator.user_message(chat, user, f"/imagine {prompt} --n 1")
    await bot.reply_to(chat, asked, prefix="Queued — position")
    await render(bot, await last_request(bot, user, chat), picture(colour, (64, 64)))
    return await bot.photo_reply(chat, asked)


async def test_styles_listed_and_an_unknown_style_names_the_ones_there_are(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    none = await bot.command(GROUP, ALICE, "/styles")
    assert none.shown == "No styles are set up here yet. Moderators add them with /admin style add."
    added = await bot.command(GROUP, OLGA, "/admin style add ink ink drawing of {prompt} --no colour")
    assert added.shown == "Added the style “ink”: /imagine a fox --style ink"
    listed = await bot.command(GROUP, ALICE, "/styles")
    assert listed.shown == (
        "Styles (use one with --style <name>):\nink (this community's): ink drawing of {prompt} · avoids: colour"
    )
    refused = await bot.command(GROUP, ALICE, "/imagine a fox --style oil")
    assert refused.shown == "There is no style “oil”. Styles here: ink."
    assert (await bot.command(GROUP, BOB, "/admin style add x x {prompt}")).shown.startswith("Only mods")


async def test_history_pages_shows_informs_and_deletes_ones_own_results(telegram_bot: TelegramBot) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    results = [await made(bot, ALICE_DM, ALICE, f"a kite number {n}", (40 * n, 90, 160)) for n in range(5)]
    ids = [request_id_of(result) for result in results]

    page = await bot.command(ALICE_DM, ALICE, "/history")
    assert page.shown.splitlines()[0] == "Your results, page 1 of 2:"
    assert "1. a kite number 4 · 1 image(s) · " + ids[4] in page.shown
    assert [b["text"] for b in page.buttons()][:3] == ["#1 Show", "ⓘ Info", "🗑 Delete"]
    assert page.callback_data()[-1] == f"ib:ho:{ids[1]}"  # Older ▶ from the page's last result

    older = await emulator.press(ALICE_DM, ALICE, page, f"ib:ho:{ids[1]}")
    assert (await emulator.wait_for(lambda: emulator.answer(older))).text == "Page 2 of 2"
    edited = emulator.message(ALICE_DM.id, page.message_id)
    assert "5. a kite number 0" in edited.shown and edited.callback_data()[-1] == f"ib:hn:{ids[0]}"

    photos = len(emulator.in_chat(ALICE_DM.id, "sendPhoto"))
    await emulator.press(ALICE_DM, ALICE, page, f"ib:sh:{ids[2]}")
    shown = await emulator.wait_for(lambda: emulator.in_chat(ALICE_DM.id, "sendPhoto")[photos:] or None)
    assert request_id_of(shown[0]) == ids[2] and f"ib:dl:{ids[2]}" in shown[0].callback_data()

    info_press = await emulator.press(ALICE_DM, ALICE, page, f"ib:i:{ids[3]}")
    assert (await emulator.wait_for(lambda: emulator.answer(info_press))).text == "Here's how it was made."
    info = await emulator.wait_for(
        lambda: next(
            (s for s in emulator.in_chat(ALICE_DM.id, "sendMessage") if "Make it again" in s.shown), None
        )
    )
    assert "/imagine a kite number 3 --size 64x64 --seed" in info.shown and "--model tiny" in info.shown
    assert "Provenance:" in info.shown and "Content Credentials" in info.shown

    replied = await emulator.user_message(ALICE_DM, ALICE, "/info", reply_to=emulator.bot_message(results[0]))
    by_reply = await bot.reply_to(ALICE_DM, replied)
    assert by_reply.shown.startswith(f"Result {ids[0]}\nMake it again with:\n/imagine a kite number 0")

    deleted = await emulator.press(ALICE_DM, ALICE, page, f"ib:dl:{ids[4]}")
    assert (await emulator.wait_for(lambda: emulator.answer(deleted))).text == "Deleted."
    await emulator.wait_for(
        lambda: (
            any(
                call.method == "deleteMessage"
                and int(call.params.get("message_id", 0)) == results[4].message_id
                for call in emulator.calls
            )
            or None
        )
    )
    after = await bot.command(ALICE_DM, ALICE, "/history")
    assert ids[4] not in after.shown and "1. a kite number 3" in after.shown

    bob = await emulator.press(ALICE_DM, BOB, page, f"ib:dl:{ids[3]}")
    answer = await emulator.wait_for(lambda: emulator.answer(bob))
    assert answer.show_alert and "Only the person who made a result can delete it" in (answer.text or "")


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_captioner(tmp_path_factory.mktemp("models") / "tiny-blip")


async def run_describe(bot: TelegramBot, request_id: str, tiny_blip: Path) -> None:
    settings = bot.pipeline.settings
    worker = WorkerContext(
        settings=settings,
        queue_name=c.QUEUE_GPU,
        redis=bot.pipeline.runtime.redis,
        store=build_store(settings),
        backends={},
        image_moderator=build_image_moderator(settings),
        captioner=TransformersCaptioner(CaptionerSettings(local_model=str(tiny_blip), max_new_tokens=8)),
    )
    assert await describe({"imagebot": worker, "job_try": 1}, request_id) == "described"


async def test_describe_a_photo_and_imagine_a_suggestion(telegram_bot: TelegramBot, tiny_blip: Path) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    await WorkerRegistry(bot.pipeline.runtime.redis).beat(
        WorkerInfo("gpu", c.QUEUE_GPU, ("tiny", c.CAPTIONER), 0.0)
    )
    asked = await emulator.user_photo(ALICE_DM, ALICE, png((200, 40, 40)), caption="/describe")
    await bot.reply_to(ALICE_DM, asked, prefix="Queued — position")
    await run_describe(bot, await last_request(bot, ALICE), tiny_blip)
    described = await bot.reply_to(ALICE_DM, asked, prefix="Prompts for this image")
    lines = described.shown.splitlines()
    assert len(lines) >= 5 and [line[:3] for line in lines[1:5]] == ["1. ", "2. ", "3. ", "4. "]
    assert [b["text"] for b in described.buttons()] == ["Imagine 1", "Imagine 2", "Imagine 3", "Imagine 4"]

    query = await emulator.press(ALICE_DM, ALICE, described, described.callback_data()[1])
    assert (await emulator.wait_for(lambda: emulator.answer(query))).text.startswith("Queued")
    imagined = await bot.pipeline.runtime.service.queue.load(await last_request(bot, ALICE))
    assert imagined.prompt == lines[2][3:]

    not_a_picture = await emulator.user_document(
        ALICE_DM, ALICE, b"%PDF-1.4", "notes.pdf", "application/pdf", caption="/describe"
    )
    assert (await bot.reply_to(ALICE_DM, not_a_picture)).shown == (
        "That file isn't a picture; please send a PNG, JPEG or WebP image."
    )
    bare = await bot.command(ALICE_DM, ALICE, "/describe")
    assert bare.shown.startswith("Send a photo with the caption /describe, or reply to a photo")
    quota = await bot.pipeline.runtime.service.admission.quotas.status(
        (await bot.pipeline.runtime.service.queue.load(imagined.request_id)).requester
    )
    assert (
        quota.used_today == 1 + imagined.n
    )  # the describe and the suggestion imagined; refusals cost nothing


async def test_admin_check_reads_credentials_and_watermark(telegram_bot: TelegramBot) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    plain = await emulator.user_photo(GROUP, OLGA, png((10, 200, 10)), caption="/admin check")
    reply = await bot.reply_to(GROUP, plain)
    assert reply.shown == (
        "What this image says about itself:\nNo Content Credentials (C2PA) in this file.\n"
        "No imagebot watermark found."
    )
    refused = await emulator.user_photo(GROUP, ALICE, png((10, 200, 10)), caption="/admin check")
    assert (await bot.reply_to(GROUP, refused)).shown == "Only mods can use /admin check."
    photo = await emulator.user_message(
        GROUP, OLGA, "/admin check", reply_to={"message_id": plain["message_id"], **plain}
    )
    assert (await bot.reply_to(GROUP, photo)).shown.startswith("What this image says about itself:")
