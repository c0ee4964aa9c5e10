"""Commands and buttons that need no rendering: errors, other people's buttons, /cancel, /settings, /help."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pydantic import SecretStr

from bots.telegram import run_telegram_bot
from core import constants as c
from core.errors import ConfigError
from core.governance.preferences import PreferenceStore
from core.keys import REQUEST_KEY, TELEGRAM_CHAT_ADMINS_KEY
from core.settings import TelegramSettings
from tests.bots.telegram.conftest import ALICE, ALICE_DM, BOB, GROUP, MONA, TelegramBot, last_request
from tests.emulators.telegram_api import Sent
from tests.settings import with_settings


def status_reply(bot: TelegramBot, chat_id: int, message_id: object) -> Sent:
    return next(s for s in bot.emulator.in_chat(chat_id, "sendMessage") if s.reply_to == message_id)


async def queued(bot: TelegramBot, chat_id: int, message_id: object) -> Sent:
    """The status message of a request once it says where it is in the queue."""
    return await bot.emulator.wait_for(
        lambda: next(
            (
                s
                for s in bot.emulator.in_chat(chat_id, "sendMessage")
                if s.reply_to == message_id and s.shown.startswith("Queued — position")
            ),
            None,
        )
    )


async def test_a_bad_flag_gets_a_message_naming_it(telegram_bot: TelegramBot) -> None:
    emulator = telegram_bot.emulator
    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine a fox --ar 99")
    status = await emulator.wait_for(
        lambda: next(
            (
                s
                for s in emulator.in_chat(ALICE_DM.id)
                if s.reply_to == asked["message_id"] and "--ar" in s.shown
            ),
            None,
        )
    )
    assert status.shown == "--ar must be two whole numbers with a colon, like 16:9 (you wrote 99)."
    assert status.history == [status.shown]  # said at once, with no "Queued…" first (defect 36)

    unknown = await emulator.user_message(ALICE_DM, ALICE, "a fox --colour red")  # plain text works in DMs
    reply = await emulator.wait_for(
        lambda: next(
            (
                s
                for s in emulator.in_chat(ALICE_DM.id)
                if s.reply_to == unknown["message_id"] and "--colour" in s.shown
            ),
            None,
        )
    )
    assert reply.shown.startswith("I don't know the flag --colour. The flags are: --ar, --size")
    assert await telegram_bot.pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 0


async def test_a_refused_command_never_shows_queued_first(telegram_bot: TelegramBot) -> None:
    """Defect 36: a refused command first flashed "Queued…", then the refusal."""
    bot, emulator = telegram_bot, telegram_bot.emulator
    emulator.make_admin(GROUP, MONA)
    await bot.announce_idle_worker()
    await bot.command(GROUP, MONA, "/admin block add dragon")
    await bot.command(GROUP, MONA, f"/admin ban {BOB.id} for 1h spamming")
    refusals = [
        (
            ALICE,
            "/imagine a red dragon",
            "Sorry, your prompt uses a word or phrase this community has blocked.",
        ),
        (ALICE, "/imagine a fox --steps 0", "--steps"),
        (BOB, "/imagine a kitten", "You've been banned from using this bot (spamming)"),
    ]
    for user, text, words in refusals:
        reply = await bot.command(GROUP, user, text)
        assert words in reply.shown, (text, reply.shown)
        assert reply.history == [reply.shown]  # the first thing shown is the refusal
    photo = await emulator.user_photo(GROUP, BOB, png(32, 32), caption="/imagine as a sketch")
    assert "banned" in (await bot.reply_to(GROUP, photo)).shown
    assert emulator.count("getFile") == 0  # a banned user's photo is not even fetched
    assert all("Queued…" not in sent.history for sent in emulator.in_chat(GROUP.id))
    assert await bot.pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 0

    queued = await bot.command(GROUP, ALICE, "/imagine a red fox")  # what passes is queued as before
    assert queued.history[0] == "Queued…"
    await emulator.wait_for(lambda: queued.shown.startswith("Queued — position 1"))


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_someone_elses_button_gets_an_alert_and_no_job(telegram_bot: TelegramBot) -> None:
    emulator, redis = telegram_bot.emulator, telegram_bot.pipeline.runtime.redis
    await telegram_bot.announce_idle_worker()
    asked = await emulator.user_message(GROUP, ALICE, f"/imagine@{emulator.username} a red fox")
    status = await queued(telegram_bot, GROUP.id, asked["message_id"])
    request_id = await last_request(telegram_bot, ALICE)

    query = await emulator.press(GROUP, BOB, status, f"ib:v:{request_id}:1")
    answer = await emulator.wait_for(lambda: emulator.answer(query))
    assert answer.show_alert
    assert answer.text == "Only the person who asked for these images can use their buttons."
    assert await redis.zcard(c.QUEUE_GPU) == 1  # only Alice's job
    assert len(await redis.keys(REQUEST_KEY.format(request_id="*"))) == 1

    forged = await emulator.press(GROUP, BOB, status, "ib:v:not-a-request:9")
    assert (await emulator.wait_for(lambda: emulator.answer(forged))).show_alert

    # Moderating the group gives no right to press someone else's buttons.
    emulator.make_admin(GROUP, MONA, can_promote_members=True)
    await redis.delete(TELEGRAM_CHAT_ADMINS_KEY.format(chat_id=GROUP.id))
    moderator = await emulator.press(GROUP, MONA, status, f"ib:r:{request_id}")
    answer = await emulator.wait_for(lambda: emulator.answer(moderator))
    assert answer.show_alert and (answer.text or "").startswith("Only the person who asked")
    assert await redis.zcard(c.QUEUE_GPU) == 1


async def test_cancel_removes_the_waiting_request(telegram_bot: TelegramBot) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    nothing = await bot.command(ALICE_DM, ALICE, "/cancel")
    assert nothing.shown == "You have no recent requests to cancel."

    await bot.announce_idle_worker()
    quotas = bot.pipeline.runtime.service.admission.quotas
    await quotas.set_daily_override(f"telegram:{ALICE.id}", 1)
    asked = await emulator.user_message(ALICE_DM, ALICE, "/img a quiet harbour --n 1")
    status = await queued(bot, ALICE_DM.id, asked["message_id"])
    refused = await emulator.user_message(ALICE_DM, ALICE, "/img a busy harbour --n 1")  # over her quota
    refusal = await bot.reply_to(ALICE_DM, refused)
    await emulator.wait_for(lambda: refusal.shown.startswith("You've used 1 of your 1 images for today"))

    # The refused request was never queued: /cancel acts on the one that waits.
    reply = await bot.command(ALICE_DM, ALICE, "/cancel")
    assert reply.shown == "Cancelled your last request."
    await emulator.wait_for(lambda: status.shown == "Cancelled before it started.")
    assert await bot.pipeline.runtime.redis.zcard(c.QUEUE_GPU) == 0


async def test_settings_buttons_store_the_users_defaults(telegram_bot: TelegramBot) -> None:
    emulator = telegram_bot.emulator
    await emulator.user_message(ALICE_DM, ALICE, "/settings")
    menu = await emulator.wait_for(lambda: next(iter(emulator.in_chat(ALICE_DM.id, "sendMessage")), None))
    assert menu.shown.startswith("Your defaults")
    assert all(data.startswith("st:") and len(data.encode()) <= 64 for data in menu.callback_data())

    query = await emulator.press(ALICE_DM, ALICE, menu, "st:n:1")
    assert (await emulator.wait_for(lambda: emulator.answer(query))).text == "Saved."
    await emulator.wait_for(lambda: "Images: 1" in menu.shown)
    await emulator.press(ALICE_DM, ALICE, menu, "st:ar:16:9")
    await emulator.wait_for(lambda: "Aspect ratio: 16:9" in menu.shown)
    await emulator.press(ALICE_DM, ALICE, menu, "st:lp:0")
    await emulator.wait_for(lambda: "Live previews: off" in menu.shown)
    assert not (
        await PreferenceStore(telegram_bot.pipeline.runtime.redis).get("telegram", str(ALICE.id))
    ).previews
    await emulator.press(ALICE_DM, ALICE, menu, "st:lp:1")  # and back on: the other settings stay
    await emulator.wait_for(lambda: "Live previews: on" in menu.shown)
    prefs = await PreferenceStore(telegram_bot.pipeline.runtime.redis).get("telegram", str(ALICE.id))
    assert (prefs.n, prefs.aspect, prefs.previews) == (1, "16:9", True)

    await telegram_bot.announce_idle_worker()
    asked = await emulator.user_message(ALICE_DM, ALICE, "/imagine a wide beach")
    await queued(telegram_bot, ALICE_DM.id, asked["message_id"])
    request_id = await last_request(telegram_bot, ALICE)
    request = await telegram_bot.pipeline.runtime.service.queue.load(request_id)
    assert request.n == 1 and request.width > request.height


async def test_help_lists_the_flags_and_commands_are_registered(telegram_bot: TelegramBot) -> None:
    emulator = telegram_bot.emulator
    await emulator.user_message(ALICE_DM, ALICE, "/help")
    reply = await emulator.wait_for(lambda: next(iter(emulator.in_chat(ALICE_DM.id, "sendMessage")), None))
    for example in (
        "--ar 16:9",
        "--seed 1234",
        "--no people, boats",
        "--model sdxl",
        "/imagine a lighthouse",
        "--lora pixel-art:0.7",
        "--control canny",
        "/loras",
    ):
        assert example in reply.shown
    everyone = [
        "imagine",
        "settings",
        "quota",
        "loras",
        "cancel",
        "describe",
        "history",
        "info",
        "styles",
        "help",
        "forget",
    ]
    assert [command["command"] for command in emulator.commands] == everyone
    for moderators in ("all_chat_administrators", "chat:1009"):  # every group's admins; the owner in private
        assert [c["command"] for c in emulator.scoped_commands[moderators]] == [*everyone, "admin"]


async def test_a_missing_token_is_a_config_error(telegram_bot: TelegramBot) -> None:
    settings = with_settings(telegram_bot.settings, telegram=TelegramSettings(token=SecretStr(" ")))
    runtime = telegram_bot.pipeline.runtime
    with pytest.raises(ConfigError, match=r"^IMAGEBOT_TELEGRAM__TOKEN: "):
        await run_telegram_bot(settings, runtime.service, runtime.redis, admin=runtime.admin)


async def test_private_replies_move_a_group_request_to_the_users_chat(telegram_bot: TelegramBot) -> None:
    emulator = telegram_bot.emulator
    await PreferenceStore(telegram_bot.pipeline.runtime.redis).update("telegram", str(ALICE.id), private=True)
    await telegram_bot.announce_idle_worker()
    await emulator.user_message(GROUP, ALICE, "/imagine a secret garden")
    status = await emulator.wait_for(
        lambda: next((s for s in emulator.in_chat(ALICE.id) if s.shown.startswith("Queued — position")), None)
    )
    assert status.reply_to is None
    assert emulator.in_chat(GROUP.id) == []
