"""The `telegram_emulator` fixture: a fresh Bot API emulator on a free port, in the test's event loop.

Use it from any test module:

    from tests.emulators.telegram_fixture import telegram_emulator_fixture  # noqa: F401

and take `telegram_emulator` as an argument. Point the bot at `telegram_emulator.base_url` and
`telegram_emulator.base_file_url` with the token `telegram_emulator.token`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.emulators.telegram_api import TelegramEmulator


@pytest.fixture(name="telegram_emulator")
async def telegram_emulator_fixture() -> AsyncIterator[TelegramEmulator]:
    emulator = TelegramEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()


# Both spellings import the same fixture; its name in tests is always `telegram_emulator`.
telegram_emulator = telegram_emulator_fixture
