"""The `discord_emulator` fixture: a fresh Discord REST + gateway emulator on a free port, in the test's loop.

Use it from any test module:

    from tests.emulators.discord_fixture import discord_emulator_fixture  # noqa: F401

and take `discord_emulator` as an argument. Point discord.py at `discord_emulator.api_base` and
`discord_emulator.gateway_url`, with the token `tests.emulators.discord_api.BOT_TOKEN`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.emulators.discord_api import DiscordEmulator


@pytest.fixture(name="discord_emulator")
async def discord_emulator_fixture() -> AsyncIterator[DiscordEmulator]:
    emulator = DiscordEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()


discord_emulator = discord_emulator_fixture
