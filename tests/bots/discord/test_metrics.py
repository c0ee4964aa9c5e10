"""The Discord bot on /readyz and /metrics: ready while its gateway connection is up, not while it is down;
the seconds discord.py waits out Discord's 429s are counted (read over HTTP)."""

from __future__ import annotations

import pytest

from tests.bots.discord.conftest import BotRunner, announce_worker, queued
from tests.emulators.discord_api import DiscordEmulator
from tests.metrics_scrape import served

USER = 4242


async def test_ready_while_the_gateway_is_connected_and_429_waits_are_counted(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await announce_worker(bots.pipeline.runtime.redis)
    async with served() as endpoint:
        await bots.start(add_check=endpoint.server.add_check)
        assert "gateway" in await endpoint.readiness(200)
        before = await endpoint.metrics()
        emulator.rate_limit("callback", times=1, retry_after=0.3)
        command = await emulator.slash("imagine", {"prompt": "a kite", "count": 1}, user_id=USER)
        await queued(bots, command)
        after = await endpoint.metrics()

        await emulator.drop_gateway(hold=True)
        assert "gateway not connected" in await endpoint.readiness(503)
        emulator.reopen_gateway()
        await endpoint.readiness(200, within_s=30)  # it reconnects and resumes
    name = "imagebot_rate_limit_wait_seconds_total"
    waited = after.value(name, platform="discord") - before.value(name, platform="discord")
    assert waited == pytest.approx(0.3)  # the one retry_after Discord asked for
