"""A Telegram user on the web, through the link the bot hands out: they see their own results, what they ask for
there is delivered by the Telegram bot to the chat the link came from, and the page shows its progress too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import ClientResponse, CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bots.telegram.requester import requester_for
from bots.web import build_app
from core.commands.links import gallery_link
from tests.bots.telegram.conftest import ALICE, GROUP, TelegramBot, bot_settings, request_id_of
from tests.emulators.telegram_api import Chat as TgChat
from tests.emulators.telegram_api import TelegramEmulator
from tests.emulators.telegram_api import User as TgUser
from tests.emulators.telegram_fixture import telegram_emulator_fixture  # noqa: F401
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.web.conftest import FAST, community
from tests.web.test_security import CSRF

PUBLIC = "http://imagebot.example"


def telegram_requester(user: TgUser, chat: TgChat) -> Any:
    from telegram import Chat, User

    return requester_for(
        User(user.id, user.first_name, False, username=user.username),
        Chat(chat.id, chat.type, title=getattr(chat, "title", None)),
    )


async def views(response: ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The result views a page's event stream carries."""
    assert response.headers["Content-Type"].startswith("text/event-stream")
    async for line in response.content:
        if line.startswith(b"data: "):
            yield json.loads(line[6:])


async def test_a_press_on_the_web_is_delivered_to_the_telegram_chat(
    telegram_emulator: TelegramEmulator,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    settings = community(bot_settings(telegram_emulator, pipeline), PUBLIC)
    bot = TelegramBot(telegram_emulator, pipeline, settings)
    await bot.start()
    runtime = pipeline.runtime
    app = build_app(settings, runtime.service, runtime.redis, consumer_name="web-link", tuning=FAST)
    try:
        await pipeline.start_worker()
        asked = await telegram_emulator.user_message(GROUP, ALICE, "/imagine a harbour at night --seed 3")
        grid_id = request_id_of(await bot.photo_reply(GROUP, asked))

        link = gallery_link(settings, telegram_requester(ALICE, GROUP))  # what /history replies with
        assert link is not None and link.startswith(f"{PUBLIC}/link/")
        async with TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True)) as client:
            opened = await client.get(link.removeprefix(PUBLIC))
            assert opened.status == 200 and opened.url.path == "/gallery"
            assert "alice (telegram)" in await opened.text()
            token = CSRF.search(await opened.text()).group(1)  # type: ignore[union-attr]
            gallery = await (await client.get("/api/gallery")).json()
            assert [r["request_id"] for r in gallery["results"]] == [grid_id]

            watching = await client.get("/api/events")  # the page watches before it presses
            photos = len(telegram_emulator.in_chat(GROUP.id, "sendPhoto"))
            pressed = await client.post(
                "/api/press",
                json={"button": f"ib:v:{grid_id}:0", "nonce": "n1"},
                headers={"X-CSRF-Token": token},
            )
            assert pressed.status == 200
            variation_id = (await pressed.json())["request_id"]

            seen = []
            async for view in views(watching):
                seen.append(view)
                if view["kind"] == "done":
                    break
            assert {view["request_id"] for view in seen} == {variation_id}
            assert "progress" in {view["kind"] for view in seen}  # the page showed it rendering
            assert seen[-1]["text"].startswith("a harbour at night\nVariation of image 1")

        # The Telegram bot delivered it to the group the link came from, as a reply of its own.
        sent = await telegram_emulator.wait_for(
            lambda: telegram_emulator.in_chat(GROUP.id, "sendPhoto")[photos:] or None, 20
        )
        assert request_id_of(sent[0]) == variation_id
        variation = await runtime.service.queue.load(variation_id)
        assert variation.requester.user_id == str(ALICE.id) and variation.reply_to["chat_id"] == str(GROUP.id)
    finally:
        await bot.stop()
        await app.shutdown()
