"""/history on both bots replies with a signed link to "your gallery" when the web front end is set up, and that
link opens the web gallery as that chat user, showing their own results."""

from __future__ import annotations

import re

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bots.web import build_app
from core.commands.links import PRIVATE_ONLY
from core.models.request import Platform, Requester
from core.settings import Settings
from tests.bots.discord.conftest import BotRunner, announce_worker, answer, bots  # noqa: F401
from tests.bots.telegram.conftest import ALICE, ALICE_DM, GROUP, TelegramBot, bot_settings
from tests.emulators.discord_api import DiscordEmulator
from tests.emulators.discord_fixture import discord_emulator_fixture  # noqa: F401
from tests.emulators.telegram_api import TelegramEmulator
from tests.emulators.telegram_fixture import telegram_emulator_fixture  # noqa: F401
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.web.conftest import FAST, community
from tests.web.results import planted
from tests.web.test_security import CSRF

PUBLIC = "http://imagebot.example"
REGION = re.compile(r"paint the region yourself on the web: (http://imagebot\.example/link/\S+)")
LINK = re.compile(r"Your gallery: (http://imagebot\.example/link/\S+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return community(settings, PUBLIC)


async def gallery_through(link: str, pipeline: Pipeline) -> list[str]:  # noqa: F811
    """Open `link` in a fresh browser session; the request ids its gallery shows."""
    runtime = pipeline.runtime
    app = build_app(runtime.settings, runtime.service, runtime.redis, consumer_name="web-bots", tuning=FAST)
    async with TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True)) as client:
        opened = await client.get(link.removeprefix(PUBLIC))
        assert opened.status == 200 and opened.url.path == "/gallery"
        body = await (await client.get("/api/gallery")).json()
        return [result["request_id"] for result in body["results"]]


async def test_telegram_history_links_to_the_gallery(
    telegram_emulator: TelegramEmulator,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    service = pipeline.runtime.service
    alice = Requester(platform=Platform.TELEGRAM, user_id=str(ALICE.id), chat_id=str(GROUP.id))
    mine = await planted(service, alice, (10, 120, 10))
    await planted(service, alice.model_copy(update={"user_id": "777"}), (1, 2, 3))  # someone else's
    bot = TelegramBot(telegram_emulator, pipeline, bot_settings(telegram_emulator, pipeline))
    await bot.start()
    try:
        reply = await bot.command(ALICE_DM, ALICE, "/history")
        found = LINK.search(reply.shown)
        assert found is not None, reply.shown
        assert await gallery_through(found.group(1), pipeline) == [mine]
        # In a group everyone would see it: a link is a credential, so the reply says where to get one.
        in_group = await bot.command(GROUP, ALICE, "/history")
        assert PRIVATE_ONLY in in_group.shown and "/link/" not in in_group.shown
    finally:
        await bot.stop()


async def test_discord_history_links_to_the_gallery(
    bots: BotRunner,  # noqa: F811
    discord_emulator: DiscordEmulator,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    await announce_worker(pipeline.runtime.redis)
    await bots.start()
    user = 4242
    requester = Requester(
        platform=Platform.DISCORD, user_id=str(user), chat_id=str(discord_emulator.channel_id)
    )
    mine = await planted(pipeline.runtime.service, requester, (10, 10, 120))
    page = await answer(discord_emulator, await discord_emulator.slash("history", user_id=user))
    found = LINK.search(page.content)
    assert page.ephemeral and found is not None, page.content
    assert await gallery_through(found.group(1), pipeline) == [mine]

    # Vary (Region) under the image: the ephemeral picker also links to the web's region editor for it.
    emulator = discord_emulator
    show = await emulator.click(page, f"ib:sh:{mine}", user_id=user)
    shown = await emulator.result(show.token, 20)
    upscale = await emulator.click(shown, f"ib:u:{mine}:0", user_id=user)
    single = await emulator.result(upscale.token, 20)
    picker = await answer(emulator, await emulator.click(single, f"ib:vr:{mine}:0", user_id=user))
    region = REGION.search(picker.content)
    assert picker.ephemeral and region is not None, picker.content
    runtime = pipeline.runtime
    app = build_app(runtime.settings, runtime.service, runtime.redis, consumer_name="web-rg", tuning=FAST)
    async with TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True)) as client:
        editor = await client.get(region.group(1).removeprefix(PUBLIC))
        assert editor.status == 200 and editor.url.path == f"/region/{mine}/0"
        assert 'id="mask"' in await editor.text()


async def test_a_discord_users_press_on_the_web_is_posted_to_their_channel(
    bots: BotRunner,  # noqa: F811
    discord_emulator: DiscordEmulator,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    await bots.start()
    await pipeline.start_worker()
    user, channel = 4242, discord_emulator.channel_id
    requester = Requester(platform=Platform.DISCORD, user_id=str(user), chat_id=str(channel))
    grid = await planted(pipeline.runtime.service, requester, (10, 10, 120))
    page = await answer(discord_emulator, await discord_emulator.slash("history", user_id=user))
    found = LINK.search(page.content)
    assert found is not None
    runtime = pipeline.runtime
    app = build_app(runtime.settings, runtime.service, runtime.redis, consumer_name="web-dc", tuning=FAST)
    async with TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True)) as client:
        opened = await client.get(found.group(1).removeprefix(PUBLIC))
        token = CSRF.search(await opened.text()).group(1)  # type: ignore[union-attr]
        pressed = await client.post(
            "/api/press", json={"button": f"ib:v:{grid}:0"}, headers={"X-CSRF-Token": token}
        )
        assert pressed.status == 200
        variation = (await pressed.json())["request_id"]
    posted = await discord_emulator.wait_for(
        lambda: [m for m in discord_emulator.channel_messages(channel) if m.files], within_s=60
    )
    assert f"ib:v:{variation}:0" in posted[0].custom_ids()
    assert posted[0].content.startswith("a (10, 10, 120) square\nVariation of image 1")
