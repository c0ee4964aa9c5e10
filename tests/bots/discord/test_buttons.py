"""End to end: pressing the buttons under a result, with the real discord.py client."""

from __future__ import annotations

import asyncio

from core import constants as c
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.test_bot import OTHER_USER, USER, queue_depth, result_of
from tests.emulators.discord_api import DiscordEmulator


async def test_someone_elses_click_gets_a_notice_and_no_job(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    grid = await result_of(emulator, command.token)
    requests_before = len(await bots.pipeline.runtime.redis.keys(c.REQUEST_KEY.format(request_id="*")))

    click = await emulator.click(grid, grid.custom_ids()[1], user_id=OTHER_USER)  # V1
    notice = await emulator.wait_for(lambda: emulator.original(click.token), within_s=10)

    assert notice.ephemeral and "Only the person who asked" in notice.content
    assert emulator.calls_for(click.token)[0].payload["type"] == 4
    await asyncio.sleep(0.2)
    assert await queue_depth(bots) == 0
    assert (
        len(await bots.pipeline.runtime.redis.keys(c.REQUEST_KEY.format(request_id="*"))) == requests_before
    )
