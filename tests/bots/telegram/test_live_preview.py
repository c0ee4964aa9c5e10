"""Live previews on Telegram: the render's picture in a photo message whose caption is the progress.

A text message can't become a photo by editing, so the first preview is sent as a silent photo replying to the
request and the "Queued…" status message goes; later previews and steps edit that photo (editMessageMedia,
editMessageCaption), at most once per `progress_interval_s`; the result arrives as before and the photo goes.
The end-to-end tests run the real PTB bot against the Bot API emulator with an in-process worker on `tiny`; the
others publish the worker's events themselves, to drive each case exactly.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from PIL import Image
from telegram import Bot, InputMediaPhoto, Message
from telegram.error import BadRequest

from bots.telegram.progress import ENDED
from bots.telegram.rate_limiter import RateLimits
from core.delivery.events import EventPublisher
from core.governance.preferences import PreferenceStore
from core.keys import PREVIEW_MESSAGE_KEY
from core.models.result import LIVE_PREVIEW_PREFIX, EventKind, ResultEvent, StoredImage
from core.settings import Settings
from tests.bots.telegram.conftest import ALICE, ALICE_DM, BOB, FAST, GROUP, TelegramBot, bot_settings
from tests.bots.telegram.test_progress import event, queued
from tests.emulators.telegram_api import Call, Sent, TelegramEmulator
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings

INTERVAL_S = 1.5  # progress edits per request, as the bot is tuned here (4 s by default)
PER_CHAT_S = 1.0  # the rate limiter's spacing of messages in one chat (its default)
EDITS = ("editMessageText", "editMessageCaption", "editMessageMedia")
PACED = ("sendMessage", "sendPhoto", "sendDocument", *EDITS)
# 50 steps at 160×160 take 8–45 s on this CPU on one core, loaded or not: a preview every 2 s (the
# worker's minimum) and several edits
RENDER = "/imagine a lighthouse at dusk --n 1 --steps 50 --size 160x160 --seed 7"


def jpeg(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def with_preview(template: ResultEvent, step: int, picture: bytes | None) -> ResultEvent:
    """A PROGRESS event at `step` of 8, stamped now (the bot judges the render's pace by the worker's stamps)."""
    preview = LIVE_PREVIEW_PREFIX + base64.b64encode(picture).decode() if picture else None
    return event(
        template, EventKind.PROGRESS, step=step, total_steps=8, live_preview=preview, created_at=time.time()
    )


@pytest.fixture
async def preview_bot(telegram_emulator: TelegramEmulator, pipeline: Pipeline) -> AsyncIterator[TelegramBot]:
    """A bot paced as in production (one message a second per chat), progress edits every INTERVAL_S, and a
    preview's photo for a render with a second left."""
    tuning = replace(
        FAST,
        progress_interval_s=INTERVAL_S,
        rate_limits=RateLimits(min_interval_s=PER_CHAT_S),
        preview_photo_min_left_s=1.0,
    )
    bot = TelegramBot(telegram_emulator, pipeline, bot_settings(telegram_emulator, pipeline), tuning=tuning)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


def one_core(settings: Settings, **worker: object) -> Settings:
    """The worker's model on one core, cores split (not taken in turns): the render's length doesn't swing with
    the machine's load."""
    changes = {"model_threads": 1, "cpu_turns": False, **worker}
    return with_settings(settings, worker=changes)


def successful(emulator: TelegramEmulator, methods: tuple[str, ...], chat_id: int) -> list[Call]:
    return [
        call
        for call in emulator.calls
        if call.method in methods and call.status == 200 and call.params.get("chat_id") == chat_id
    ]


def progress_edits(emulator: TelegramEmulator, message_id: int) -> list[Call]:
    """The progress edits of one message (the acknowledgement's "Queued — position" edit is not progress)."""
    return [
        call
        for call in successful(emulator, EDITS, ALICE_DM.id)
        if call.params.get("message_id") == message_id
        and not str(call.params.get("text", "")).startswith("Queued")
    ]


def gaps(calls: list[Call]) -> list[float]:
    return [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]


def left_in_chat(emulator: TelegramEmulator) -> list[Sent]:
    return [sent for sent in emulator.in_chat(ALICE_DM.id) if not sent.deleted]


async def preview_photo(emulator: TelegramEmulator, asked: dict[str, object]) -> Sent:
    """The silent photo showing the live preview, replying to the request."""
    return await emulator.wait_for(
        lambda: next(
            (
                s
                for s in emulator.in_chat(ALICE_DM.id, "sendPhoto")
                if s.reply_to == asked["message_id"] and s.silent
            ),
            None,
        ),
        120,
    )


async def result_photo(emulator: TelegramEmulator, asked: dict[str, object]) -> Sent:
    return await emulator.wait_for(
        lambda: next(
            (
                s
                for s in emulator.in_chat(ALICE_DM.id, "sendPhoto")
                if s.reply_to == asked["message_id"] and s.callback_data()
            ),
            None,
        ),
        240,
    )


# -- end to end, with a worker on the tiny model ----------------------------------------------------------------


async def test_the_user_watches_the_render_in_a_photo_that_the_result_replaces(
    preview_bot: TelegramBot,
) -> None:
    bot, emulator = preview_bot, preview_bot.emulator
    await bot.pipeline.start_worker(settings=one_core(bot.pipeline.settings))
    asked = await emulator.user_message(ALICE_DM, ALICE, RENDER)
    status = await bot.reply_to(ALICE_DM, asked, prefix="Queued")

    preview = await preview_photo(emulator, asked)
    assert preview.caption is not None and preview.caption.startswith("Rendering… ")
    with Image.open(io.BytesIO(preview.pictures[0])) as picture:
        assert picture.format == "JPEG" and picture.size == (160, 160)
    await emulator.wait_for(lambda: status.deleted)  # the photo took the status message's place

    result = await result_photo(emulator, asked)
    assert [b["text"] for b in result.buttons()][:2] == ["U1", "V1"]
    assert result.caption is not None and result.caption.startswith("a lighthouse at dusk")
    await emulator.wait_for(lambda: preview.deleted)
    assert left_in_chat(emulator) == [result]  # no progress message is left behind

    shown = [caption for caption in preview.history if caption.startswith("Rendering… ")]
    assert len(shown) >= 2 and len(set(shown)) == len(shown), preview.history  # the caption moved on
    steps = [int(caption.removeprefix("Rendering… ").removesuffix("%")) for caption in shown]
    assert steps == sorted(steps)
    # never more than one progress edit per message per interval, nor one message a second in the chat
    for message in (status, preview):
        assert all(gap >= INTERVAL_S * 0.95 for gap in gaps(progress_edits(emulator, message.message_id)))
    assert all(gap >= PER_CHAT_S * 0.95 for gap in gaps(successful(emulator, PACED, ALICE_DM.id)))


async def test_with_previews_off_the_progress_stays_text(preview_bot: TelegramBot) -> None:
    bot, emulator = preview_bot, preview_bot.emulator
    await bot.pipeline.start_worker(settings=one_core(bot.pipeline.settings, live_previews=False))
    asked = await emulator.user_message(ALICE_DM, ALICE, RENDER.replace("160x160", "128x128"))
    status = await bot.reply_to(ALICE_DM, asked, prefix="Queued")

    result = await result_photo(emulator, asked)
    assert emulator.in_chat(ALICE_DM.id, "sendPhoto") == [result]  # no photo but the result
    assert any(text.startswith("Rendering… ") and text.endswith("%") for text in status.history), (
        status.history
    )
    await emulator.wait_for(lambda: status.deleted)
    assert left_in_chat(emulator) == [result]
    assert emulator.count("editMessageMedia") == emulator.count("editMessageCaption") == 0


async def test_a_user_who_turned_previews_off_gets_text_while_others_in_the_chat_get_photos(
    preview_bot: TelegramBot,
) -> None:
    """Bob turns live previews off in /settings; in the same group, his render's progress is text only while
    Alice's, rendered by the same worker, shows its preview photo. Both get their results."""
    bot, emulator = preview_bot, preview_bot.emulator
    asked = await emulator.user_message(GROUP, BOB, "/settings")
    menu = await bot.reply_to(GROUP, asked, prefix="Your defaults")
    assert "Live previews: on" in menu.shown and "✓ Live previews" in [b["text"] for b in menu.buttons()]
    await emulator.press(GROUP, BOB, menu, "st:lp:0")
    await emulator.wait_for(lambda: "Live previews: off — progress as text only" in menu.shown)
    assert "Live previews" in [b["text"] for b in menu.buttons()]  # no longer ticked
    assert "st:lp:1" in menu.callback_data()  # the button now turns them back on
    assert not (await PreferenceStore(bot.pipeline.runtime.redis).get("telegram", str(BOB.id))).previews

    await bot.pipeline.start_worker(settings=one_core(bot.pipeline.settings))
    bobs = await emulator.user_message(GROUP, BOB, RENDER.replace("160x160", "128x128"))
    bobs_status = await bot.reply_to(GROUP, bobs, prefix="Queued")
    alices = await emulator.user_message(GROUP, ALICE, RENDER.replace("--seed 7", "--seed 8"))

    def photos_replying_to(asked: dict[str, object]) -> list[Sent]:
        return [s for s in emulator.in_chat(GROUP.id, "sendPhoto") if s.reply_to == asked["message_id"]]

    alices_preview = await emulator.wait_for(
        lambda: next((s for s in photos_replying_to(alices) if s.silent), None), 240
    )
    assert alices_preview.caption is not None and alices_preview.caption.startswith("Rendering… ")
    bobs_result = await bot.photo_reply(GROUP, bobs, within=240)
    alices_result = await bot.photo_reply(GROUP, alices, within=240)
    assert bobs_result.caption is not None and bobs_result.caption.startswith("a lighthouse at dusk")
    assert alices_result.callback_data()
    assert photos_replying_to(bobs) == [bobs_result]  # no preview photo for Bob, only his result
    assert any(text.startswith("Rendering… ") and text.endswith("%") for text in bobs_status.history), (
        bobs_status.history
    )
    await emulator.wait_for(lambda: bobs_status.deleted and alices_preview.deleted)

    await emulator.press(GROUP, BOB, menu, "st:reset:")  # Reset turns them back on
    await emulator.wait_for(lambda: "Live previews: on" in menu.shown)
    assert (await PreferenceStore(bot.pipeline.runtime.redis).get("telegram", str(BOB.id))).previews


# -- each case, with the worker's events published by the test ---------------------------------------------------


async def done(bot: TelegramBot, template: ResultEvent) -> ResultEvent:
    """The DONE event a worker would publish: one 64×64 PNG in the store."""
    store = bot.pipeline.runtime.service.store
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(buffer, format="PNG")
    key = await store.put(buffer.getvalue(), "image/png")
    image = StoredImage(key=key, url=await store.url(key), width=64, height=64, seed=7, index=0)
    return event(template, EventKind.DONE, model="tiny", backend="diffusers", images=(image,))


@pytest.fixture
async def waiting_bot(preview_bot: TelegramBot) -> TelegramBot:
    """The paced bot with an idle worker announced: requests wait in the queue, the test plays the worker."""
    await preview_bot.announce_idle_worker()
    return preview_bot


async def started(bot: TelegramBot, ago_s: float = 10.0) -> tuple[Sent, ResultEvent, EventPublisher]:
    """Alice's request, rendering since `ago_s`: its status message, an event template and a publisher. (At 25 %
    after 10 s, a render has 30 s left: worth a photo.)"""
    publisher = EventPublisher(bot.pipeline.runtime.redis)
    status, template = await queued(bot, "a windmill")
    template = template.model_copy(update={"created_at": time.time() - ago_s})
    await publisher.publish(template)  # STARTED, stamped `ago_s` ago
    await bot.emulator.wait_for(lambda: status.shown == "Rendering…")
    return status, template, publisher


async def photo_started(bot: TelegramBot) -> tuple[Sent, Sent, ResultEvent, EventPublisher]:
    """…and its first live preview (red, at 25 %) shown: the status message, the photo, template, publisher."""
    status, template, publisher = await started(bot)
    await publisher.publish(with_preview(template, 2, jpeg("red")))
    photo = await preview_photo(bot.emulator, {"message_id": status.reply_to})
    await bot.emulator.wait_for(lambda: status.deleted)
    return status, photo, template, publisher


async def test_the_photo_replaces_the_status_and_each_update_is_one_edit(waiting_bot: TelegramBot) -> None:
    emulator = waiting_bot.emulator
    status, photo, template, publisher = await photo_started(waiting_bot)
    assert photo.caption == "Rendering… 25%" and photo.pictures == [jpeg("red")]
    assert photo.silent and photo.reply_to == status.reply_to and not photo.buttons()

    # a burst inside the interval: the newer step without a picture keeps the burst's newest picture
    await publisher.publish(with_preview(template, 4, jpeg("blue")))
    await publisher.publish(with_preview(template, 6, None))
    await emulator.wait_for(lambda: photo.caption == "Rendering… 75%", timeout=5 * INTERVAL_S)
    assert photo.pictures == [jpeg("red"), jpeg("blue")]  # the picture and its caption in one edit
    assert (emulator.count("editMessageMedia"), emulator.count("editMessageCaption")) == (1, 0)

    await publisher.publish(with_preview(template, 7, None))  # a step alone: the caption alone
    await emulator.wait_for(lambda: photo.caption == "Rendering… 88%", timeout=5 * INTERVAL_S)
    assert photo.pictures[-1] == jpeg("blue") and emulator.count("editMessageCaption") == 1

    await publisher.publish(await done(waiting_bot, template))
    result = await result_photo(emulator, {"message_id": status.reply_to})
    await emulator.wait_for(lambda: photo.deleted)
    assert left_in_chat(emulator) == [result]
    edits = progress_edits(emulator, photo.message_id)
    assert len(edits) == 2 and all(gap >= INTERVAL_S * 0.95 for gap in gaps(edits))
    redis = waiting_bot.pipeline.runtime.redis
    key = PREVIEW_MESSAGE_KEY.format(platform="telegram", request_id=template.request_id)
    assert await redis.get(key) == b"-" and await redis.ttl(key) > 0  # ended: a late preview starts nothing


async def test_flood_control_drops_a_preview_edit_but_never_the_result(waiting_bot: TelegramBot) -> None:
    emulator = waiting_bot.emulator
    status, photo, template, publisher = await photo_started(waiting_bot)
    emulator.rate_limit_next("editMessageMedia", 1, retry_after=1)
    await publisher.publish(with_preview(template, 4, jpeg("blue")))
    await emulator.wait_for(
        lambda: any(c.method == "editMessageMedia" and c.status == 429 for c in emulator.calls),
        timeout=5 * INTERVAL_S,
    )
    await asyncio.sleep(1.5)  # longer than retry_after: a retry would have landed by now
    assert photo.pictures == [jpeg("red")]  # advisory: not waited out, not retried
    assert [c.status for c in emulator.calls if c.method == "editMessageMedia"] == [429]

    emulator.rate_limit_next("sendPhoto", 2, retry_after=1)
    await publisher.publish(await done(waiting_bot, template))
    result = await result_photo(emulator, {"message_id": status.reply_to})  # the 429s were waited out
    await emulator.wait_for(lambda: photo.deleted)
    assert left_in_chat(emulator) == [result] and result.callback_data()


async def test_a_refused_render_takes_its_preview_with_it(waiting_bot: TelegramBot) -> None:
    emulator = waiting_bot.emulator
    status, photo, template, publisher = await photo_started(waiting_bot)
    refusal = "The images didn't pass the safety check."
    await publisher.publish(event(template, EventKind.REFUSED, reason_code="image_refused", message=refusal))
    await emulator.wait_for(lambda: photo.deleted)
    [said] = left_in_chat(emulator)
    assert said.text == refusal and said.reply_to == status.reply_to  # a reply, as the status message is gone


async def test_a_first_photo_flood_control_refused_leaves_the_text_until_the_next_preview(
    waiting_bot: TelegramBot,
) -> None:
    emulator = waiting_bot.emulator
    status, template, publisher = await started(waiting_bot)
    emulator.rate_limit_next("sendPhoto", 1, retry_after=1)
    await publisher.publish(with_preview(template, 2, jpeg("red")))
    await emulator.wait_for(lambda: any(c.method == "sendPhoto" and c.status == 429 for c in emulator.calls))
    assert not status.deleted and emulator.in_chat(ALICE_DM.id, "sendPhoto") == []

    await publisher.publish(with_preview(template, 4, jpeg("blue")))  # the next preview tries again
    photo = await preview_photo(emulator, {"message_id": status.reply_to})
    assert photo.pictures == [jpeg("blue")] and photo.caption == "Rendering… 50%"
    await emulator.wait_for(lambda: status.deleted)


async def test_a_render_about_to_end_is_not_worth_a_photo(waiting_bot: TelegramBot) -> None:
    emulator = waiting_bot.emulator
    status, template, publisher = await started(waiting_bot)
    at_25 = with_preview(template, 2, jpeg("red")).model_copy(
        update={"created_at": template.created_at + 0.2}
    )
    await publisher.publish(at_25)  # 25 % a fifth of a second in: 0.6 s left
    await emulator.wait_for(lambda: status.shown == "Rendering… 25%", timeout=5 * INTERVAL_S)
    await publisher.publish(await done(waiting_bot, template))
    result = await result_photo(emulator, {"message_id": status.reply_to})
    await emulator.wait_for(lambda: status.deleted)
    assert emulator.in_chat(ALICE_DM.id, "sendPhoto") == [result] and left_in_chat(emulator) == [result]


async def test_a_preview_telegram_wont_delete_points_to_the_result(waiting_bot: TelegramBot) -> None:
    emulator = waiting_bot.emulator
    status, photo, template, publisher = await photo_started(waiting_bot)
    emulator.fail_next("deleteMessage", 2, 400, "Bad Request: message can't be deleted for everyone")
    await publisher.publish(await done(waiting_bot, template))
    result = await result_photo(emulator, {"message_id": status.reply_to})
    await emulator.wait_for(lambda: photo.caption == ENDED)
    assert left_in_chat(emulator) == [photo, result]


async def test_a_restarted_bot_still_removes_the_preview(waiting_bot: TelegramBot) -> None:
    emulator = waiting_bot.emulator
    status, photo, template, publisher = await photo_started(waiting_bot)
    await waiting_bot.stop()
    await waiting_bot.start()  # a new process: which photo shows the render is in Redis, not in memory
    await publisher.publish(await done(waiting_bot, template))
    result = await result_photo(emulator, {"message_id": status.reply_to})
    await emulator.wait_for(lambda: photo.deleted)
    assert left_in_chat(emulator) == [result]


async def test_the_emulator_answers_edits_as_telegram_does(telegram_emulator: TelegramEmulator) -> None:
    emulator = telegram_emulator
    async with Bot(emulator.token, base_url=emulator.base_url, base_file_url=emulator.base_file_url) as bot:
        text = await bot.send_message(ALICE_DM.id, "Queued…")
        photo = await bot.send_photo(ALICE_DM.id, jpeg("red"), caption="Rendering… 25%")
        with pytest.raises(BadRequest, match=r"(?i)there is no media in the message to edit"):
            await bot.edit_message_media(InputMediaPhoto(jpeg("red")), ALICE_DM.id, text.message_id)
        with pytest.raises(BadRequest, match=r"(?i)there is no caption in the message to edit"):
            await bot.edit_message_caption(ALICE_DM.id, text.message_id, caption="Rendering…")
        with pytest.raises(BadRequest, match=r"(?i)there is no text in the message to edit"):
            await bot.edit_message_text("Rendering…", ALICE_DM.id, photo.message_id)
        same = InputMediaPhoto(photo.photo[-1].file_id, caption="Rendering… 25%")
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_media(same, ALICE_DM.id, photo.message_id)
        edited = await bot.edit_message_media(
            InputMediaPhoto(jpeg("blue"), caption="Rendering… 50%"), ALICE_DM.id, photo.message_id
        )
        assert isinstance(edited, Message) and edited.caption == "Rendering… 50%" and edited.photo
        await bot.delete_message(ALICE_DM.id, photo.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
            await bot.delete_message(ALICE_DM.id, photo.message_id)
    sent = emulator.message(ALICE_DM.id, photo.message_id)
    assert sent.pictures == [jpeg("red"), jpeg("blue")] and sent.deleted
    assert sent.history == ["Rendering… 25%", "Rendering… 50%"]
