"""OpenAIPromptCheck with the real openai SDK against the local OpenAI emulator."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from pydantic import SecretStr

from core.errors import ConfigError
from core.models.verdict import Outcome
from core.settings import OpenAISettings
from moderation.openai_check import OpenAIPromptCheck
from tests.emulators.openai_api import OpenAIEmulator
from tests.emulators.openai_fixture import openai_emulator_fixture  # noqa: F401

MODERATIONS = "/v1/moderations"


def make_check(emulator: OpenAIEmulator, **overrides: Any) -> OpenAIPromptCheck:
    values: dict[str, Any] = {
        "api_key": SecretStr(emulator.api_key),
        "base_url": emulator.base_url,
        "timeout_s": 5.0,
        "max_retries": 0,
    }
    values.update(overrides)
    return OpenAIPromptCheck(OpenAISettings(**values))


async def test_a_clean_prompt_is_allowed(openai_emulator: OpenAIEmulator) -> None:
    check = make_check(openai_emulator)
    verdict = await check.check_prompt("a lighthouse at dusk", "", None)
    await check.close()

    assert verdict.outcome is Outcome.ALLOWED
    assert verdict.normalized == "a lighthouse at dusk"
    assert set(verdict.scores) >= {"sexual", "violence", "self-harm"}
    (sent,) = openai_emulator.requests_to(MODERATIONS)
    assert sent.body == {"model": "omni-moderation-latest", "input": "a lighthouse at dusk"}


async def test_a_flagged_prompt_is_refused_with_its_categories(openai_emulator: OpenAIEmulator) -> None:
    check = make_check(openai_emulator)
    verdict = await check.check_prompt("a battlefield covered in gore", "", "guild-1")
    await check.close()

    assert verdict.outcome is Outcome.REFUSED
    assert verdict.categories == ("violence", "violence/graphic")
    assert verdict.reason_code == "openai_moderation"
    assert "violence" in verdict.message and "rephrase" in verdict.message
    assert verdict.scores["violence"] > 0.9


async def test_the_negative_prompt_is_not_sent(openai_emulator: OpenAIEmulator) -> None:
    check = make_check(openai_emulator)
    verdict = await check.check_prompt("a portrait", "nude, gore", None)
    await check.close()

    assert verdict.outcome is Outcome.ALLOWED
    (sent,) = openai_emulator.requests_to(MODERATIONS)
    assert sent.body["input"] == "a portrait"


async def test_an_outage_is_check_failed_never_allowed(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.fail_next(1, 503)
    check = make_check(openai_emulator)
    verdict = await check.check_prompt("a lighthouse", "", None)
    await check.close()

    assert verdict.outcome is Outcome.CHECK_FAILED
    assert verdict.reason_code == "moderation_unavailable"
    assert "try again" in verdict.message


async def test_retries_are_capped_so_users_are_not_kept_waiting(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.fail_next(5, 500, retry_after=0.01)
    check = make_check(openai_emulator, max_retries=5)
    verdict = await check.check_prompt("a lighthouse", "", None)
    await check.close()

    assert verdict.outcome is Outcome.CHECK_FAILED
    assert len(openai_emulator.requests_to(MODERATIONS)) == 2  # one try and one retry, not six


async def test_a_hanging_endpoint_is_check_failed_quickly(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.hang_next(1)
    check = make_check(openai_emulator, timeout_s=0.2)
    started = time.monotonic()
    verdict = await check.check_prompt("a lighthouse", "", None)
    await check.close()

    assert verdict.outcome is Outcome.CHECK_FAILED
    assert time.monotonic() - started < 1.5


async def test_an_unreachable_endpoint_or_a_wrong_key_is_check_failed(
    openai_emulator: OpenAIEmulator,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    unreachable = make_check(openai_emulator, base_url=f"http://127.0.0.1:{closed_port}/v1")
    wrong_key = make_check(openai_emulator, api_key=SecretStr("sk-wrong"))

    verdicts = [await check.check_prompt("a lighthouse", "", None) for check in (unreachable, wrong_key)]
    await unreachable.close()
    await wrong_key.close()

    assert [verdict.outcome for verdict in verdicts] == [Outcome.CHECK_FAILED, Outcome.CHECK_FAILED]
    assert all("sk-wrong" not in verdict.message for verdict in verdicts)
    assert [request.status for request in openai_emulator.requests_to(MODERATIONS)] == [401]


def test_the_check_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="API key"):
        OpenAIPromptCheck(OpenAISettings(api_key=None))
