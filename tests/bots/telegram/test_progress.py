"""STARTED/PROGRESS events: the "uploading photo" action and a status message edited at most once per interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from core.commands.messages import progress_message
from core.delivery.events import EventPublisher
from core.models.result import EventKind, ResultEvent
from tests.bots.telegram.conftest import ALICE, ALICE_DM, FAST, TelegramBot, bot_settings, last_request
from tests.emulators.telegram_api import Sent, TelegramEmulator
from tests.pipeline_fixture import Pipeline

INTERVAL_S = 1.0


@pytest.fixture
async def paced_bot(telegram_emulator: TelegramEmulator, pipeline: Pipeline) -> AsyncIterator[TelegramBot]:
    """A bot that edits progress at most once a second per chat, with an idle worker announced (no renders)."""
    bot = TelegramBot(
        telegram_emulator,
        pipeline,
        bot_settings(telegram_emulator, pipeline),
        tuning=replace(FAST, progress_interval_s=INTERVAL_S),
    )
    await bot.start()
    await bot.announce_idle_worker()
    try:
        yield bot
    finally:
        await bot.stop()


async def queued(bot: TelegramBot, prompt: str) -> tuple[Sent, ResultEvent]:
    """Alice asks; her status message once it says "Queued — position…", and an event template for it."""
    emulator = bot.emulator
    asked = await emulator.user_message(ALICE_DM, ALICE, f"/imagine {prompt} --n 1")
    status = await emulator.wait_for(
        lambda: next(
            (
                s
                for s in emulator.in_chat(ALICE_DM.id, "sendMessage")
                if s.reply_to == asked["message_id"] and s.shown.startswith("Queued — position")
            ),
            None,
        )
    )
    request_id = await last_request(bot, ALICE)
    request = await bot.pipeline.runtime.service.queue.load(request_id)
    template = ResultEvent(
        kind=EventKind.STARTED, request_id=request_id, requester=request.requester, reply_to=request.reply_to
    )
    return status, template


def edits_of(emulator: TelegramEmulator, sent: Sent) -> list[float]:
    return [
        call.at
        for call in emulator.calls
        if call.method == "editMessageText"
        and call.status == 200
        and call.params["message_id"] == sent.message_id
    ]


def event(template: ResultEvent, kind: EventKind, **fields: Any) -> ResultEvent:
    return template.model_copy(update={"kind": kind, **fields})


async def test_a_burst_of_progress_is_one_edit_per_interval_ending_with_the_latest(
    paced_bot: TelegramBot,
) -> None:
    emulator = paced_bot.emulator
    publisher = EventPublisher(paced_bot.pipeline.runtime.redis)
    status, template = await queued(paced_bot, "a slow sunrise")
    queued_text, edits_before = status.shown, len(edits_of(emulator, status))

    await publisher.publish(template)  # STARTED
    await emulator.wait_for(lambda: status.shown == "Rendering…")
    assert (ALICE_DM.id, "upload_photo") in emulator.chat_actions
    burst = [event(template, EventKind.PROGRESS, step=step, total_steps=8) for step in range(1, 9)]
    for progress in burst:
        await publisher.publish(progress)

    final = progress_message(burst[-1])
    assert final == "Rendering… 100%"
    await emulator.wait_for(lambda: status.shown == final, timeout=5 * INTERVAL_S)
    assert status.history[-3:] == [queued_text, "Rendering…", final]  # the burst became one edit
    started_edit, burst_edit = edits_of(emulator, status)[edits_before:]
    assert burst_edit - started_edit >= INTERVAL_S * 0.95


async def test_progress_held_back_never_overwrites_the_end_of_its_request(paced_bot: TelegramBot) -> None:
    emulator = paced_bot.emulator
    publisher = EventPublisher(paced_bot.pipeline.runtime.redis)
    first, first_events = await queued(paced_bot, "a red kite")
    second, second_events = await queued(paced_bot, "a blue kite")

    await publisher.publish(first_events)  # STARTED: shown at once
    await emulator.wait_for(lambda: first.shown == "Rendering…")
    await publisher.publish(event(first_events, EventKind.PROGRESS, step=3, total_steps=4))  # held back
    await publisher.publish(
        event(first_events, EventKind.CANCELLED, message="Cancelled — nothing was drawn.")
    )
    await emulator.wait_for(lambda: first.shown == "Cancelled — nothing was drawn.")

    # Another request's progress in the same chat is shown as usual, and once the first request's interval
    # has passed its held 75% would have been shown too, had it not been dropped at its end.
    await publisher.publish(event(second_events, EventKind.PROGRESS, step=1, total_steps=4))
    await emulator.wait_for(lambda: second.shown == "Rendering… 25%", timeout=5 * INTERVAL_S)
    await asyncio.sleep(1.5 * INTERVAL_S)
    assert first.shown == "Cancelled — nothing was drawn."
    assert "Rendering… 75%" not in first.history
