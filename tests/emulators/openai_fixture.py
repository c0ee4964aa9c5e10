"""The `openai_emulator` fixture: a fresh OpenAI emulator on a free port, in the test's event loop.

Use it from any test module:

    from tests.emulators.openai_fixture import openai_emulator_fixture  # noqa: F401

and take `openai_emulator` as an argument. (Importing `openai_emulator` works too, but then ruff reports
F811 wherever a test's argument shadows the import.) Point the code under test at
`openai_emulator.base_url` with the key `openai_emulator.api_key`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.emulators.openai_api import OpenAIEmulator


@pytest.fixture(name="openai_emulator")
async def openai_emulator_fixture() -> AsyncIterator[OpenAIEmulator]:
    emulator = OpenAIEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()


# Both spellings import the same fixture; its name in tests is always `openai_emulator`.
openai_emulator = openai_emulator_fixture
