"""OpenAIBackend with the real openai SDK against the local OpenAI emulator."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
from pydantic import SecretStr

from core.errors import BackendUnavailable, ConfigError, GenerationFailed, InvalidRequest, PromptRejected
from core.models.ids import new_request_id
from core.models.request import GenerationRequest, Mode, Platform, Requester
from core.settings import OpenAISettings
from tests.emulators.openai_api import CONTENT_POLICY_WORD, OpenAIEmulator
from tests.emulators.openai_fixture import openai_emulator_fixture  # noqa: F401
from worker.backend import Generation
from worker.openai_backend import OpenAIBackend, fold_negative

GENERATIONS = "/v1/images/generations"


def make_request(**overrides: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "request_id": new_request_id(),
        "prompt": "a lighthouse at dusk",
        "width": 1024,
        "height": 1024,
        "steps": 1,
        "guidance": 0.0,
        "seeds": (11,),
        "model": "dall-e-3",
        "requester": Requester(platform=Platform.CLI, user_id="u1", chat_id="c1"),
    }
    values.update(overrides)
    return GenerationRequest(**values)


def make_settings(emulator: OpenAIEmulator, **overrides: Any) -> OpenAISettings:
    values: dict[str, Any] = {
        "api_key": SecretStr(emulator.api_key),
        "base_url": emulator.base_url,
        "timeout_s": 5.0,
        "max_retries": 0,
    }
    values.update(overrides)
    return OpenAISettings(**values)


async def generate(settings: OpenAISettings, request: GenerationRequest) -> Generation:
    backend = OpenAIBackend(settings)
    try:
        return await backend.generate(request, None)
    finally:
        await backend.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("model", "width", "height", "expected"),
    [
        ("dall-e-3", 1920, 1080, (1792, 1024)),
        ("dall-e-3", 768, 1344, (1024, 1792)),
        ("dall-e-3", 512, 512, (1024, 1024)),
        ("gpt-image-1", 1216, 832, (1536, 1024)),
        ("gpt-image-1", 832, 1216, (1024, 1536)),
    ],
)
async def test_size_maps_to_the_closest_aspect_ratio_and_decodes(
    openai_emulator: OpenAIEmulator, model: str, width: int, height: int, expected: tuple[int, int]
) -> None:
    generation = await generate(
        make_settings(openai_emulator), make_request(model=model, width=width, height=height)
    )

    (sent,) = openai_emulator.requests_to(GENERATIONS)
    assert sent.body["size"] == f"{expected[0]}x{expected[1]}"
    assert sent.body["model"] == model
    assert generation.images[0].image.size == expected
    assert generation.images[0].image.mode == "RGB"
    assert generation.model == model and generation.backend == "openai"
    assert generation.note is not None and f"{expected[0]}×{expected[1]}" in generation.note


async def test_dall_e_3_makes_one_b64_call_per_image_and_keeps_seeds_and_revised_prompt(
    openai_emulator: OpenAIEmulator,
) -> None:
    request = make_request(seeds=(1, 2, 3, 4), prompt="a red fox in snow")
    progress: list[tuple[int, int]] = []
    backend = OpenAIBackend(make_settings(openai_emulator))
    try:
        generation = await backend.generate(request, None, lambda step, total: progress.append((step, total)))
    finally:
        await backend.close()

    sent = openai_emulator.requests_to(GENERATIONS)
    assert len(sent) == 4
    assert all(call.body["n"] == 1 and call.body["response_format"] == "b64_json" for call in sent)
    assert [image.seed for image in generation.images] == [1, 2, 3, 4]
    assert all(image.image.size == (1024, 1024) for image in generation.images)
    assert generation.revised_prompt == "A detailed, high-quality illustration of a red fox in snow"
    assert progress[-1] == (4, 4) and len(progress) == 4
    assert generation.note is None


async def test_gpt_image_1_takes_n_in_one_call_without_response_format(
    openai_emulator: OpenAIEmulator,
) -> None:
    generation = await generate(
        make_settings(openai_emulator), make_request(model="gpt-image-1", seeds=(5, 6, 7, 8))
    )

    (sent,) = openai_emulator.requests_to(GENERATIONS)
    assert sent.body["n"] == 4
    assert "response_format" not in sent.body
    assert sent.body["quality"] == "medium"  # the default "standard" in gpt-image-1's words
    assert [image.seed for image in generation.images] == [5, 6, 7, 8]
    assert len({image.image.tobytes() for image in generation.images}) == 4  # four different pictures
    assert generation.revised_prompt is None


async def test_negative_prompt_is_folded_into_the_prompt(openai_emulator: OpenAIEmulator) -> None:
    await generate(
        make_settings(openai_emulator), make_request(prompt="a cat", negative_prompt="dogs, blur ,")
    )

    (sent,) = openai_emulator.requests_to(GENERATIONS)
    assert sent.body["prompt"] == "a cat. Avoid: dogs, blur."


def test_fold_negative_leaves_a_prompt_without_negative_alone() -> None:
    assert fold_negative("  a cat!  ", "") == "a cat!"
    assert fold_negative("a cat!", "dogs") == "a cat! Avoid: dogs."


async def test_a_local_model_falls_back_to_the_configured_openai_model(
    openai_emulator: OpenAIEmulator,
) -> None:
    generation = await generate(
        make_settings(openai_emulator, model="gpt-image-1"),
        make_request(model="sdxl", width=1024, height=1024),
    )

    (sent,) = openai_emulator.requests_to(GENERATIONS)
    assert sent.body["model"] == "gpt-image-1"
    assert generation.model == "gpt-image-1"
    assert generation.note is not None and "instead of sdxl" in generation.note


@pytest.mark.parametrize("model", ["dall-e-3", "gpt-image-1"])
async def test_content_policy_refusal_is_prompt_rejected(openai_emulator: OpenAIEmulator, model: str) -> None:
    with pytest.raises(PromptRejected) as caught:
        await generate(
            make_settings(openai_emulator),
            make_request(model=model, prompt=f"something {CONTENT_POLICY_WORD}", seeds=(1, 2)),
        )

    assert caught.value.categories == ("openai_policy",)
    assert "safety system" in caught.value.message
    assert "rephrase" in caught.value.message


async def test_server_errors_are_backend_unavailable(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.fail_next(1, 500)
    with pytest.raises(BackendUnavailable, match="HTTP 500"):
        await generate(make_settings(openai_emulator), make_request())


async def test_one_failed_call_of_four_fails_the_request(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.fail_next(1, 503)
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        await generate(make_settings(openai_emulator), make_request(seeds=(1, 2, 3, 4)))


async def test_a_retried_503_and_429_still_render(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.fail_next(1, 503, retry_after=0.01)
    openai_emulator.rate_limit_next(1, retry_after=0.01)
    generation = await generate(make_settings(openai_emulator, max_retries=2), make_request())

    assert [call.status for call in openai_emulator.requests_to(GENERATIONS)] == [503, 429, 200]
    assert generation.images[0].image.size == (1024, 1024)


async def test_persistent_rate_limit_is_backend_unavailable(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.rate_limit_next(3, retry_after=0.01)
    with pytest.raises(BackendUnavailable, match="429"):
        await generate(make_settings(openai_emulator, max_retries=2), make_request())
    assert len(openai_emulator.requests_to(GENERATIONS)) == 3


async def test_a_hanging_api_times_out_within_the_configured_bound(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.hang_next(2)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="in time"):
        await generate(make_settings(openai_emulator, timeout_s=0.2, max_retries=1), make_request())
    # Two attempts of 0.2 s and one backoff of at most 0.5 s.
    assert time.monotonic() - started < 2.0
    assert len(openai_emulator.requests_to(GENERATIONS)) == 2


async def test_an_unreachable_api_is_backend_unavailable() -> None:
    settings = OpenAISettings(
        api_key=SecretStr("sk-unused"), base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0
    )
    with pytest.raises(BackendUnavailable, match="could not be reached"):
        await generate(settings, make_request())


async def test_errors_never_contain_the_key(
    openai_emulator: OpenAIEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="worker")
    wrong_key = "sk-wrong-key-that-must-stay-secret-42"
    with pytest.raises(BackendUnavailable) as caught:
        await generate(make_settings(openai_emulator, api_key=SecretStr(wrong_key)), make_request())

    (sent,) = openai_emulator.requests_to(GENERATIONS)
    assert sent.status == 401
    assert "API key" in caught.value.message
    assert wrong_key not in str(caught.value)
    assert wrong_key not in repr(caught.value.__cause__) and caught.value.__cause__ is None
    assert caplog.records and wrong_key not in caplog.text


async def test_unsupported_modes_are_refused_before_any_call(openai_emulator: OpenAIEmulator) -> None:
    request = make_request(mode=Mode.VARIATION, source_image="images/abc.png", strength=0.6)
    with pytest.raises(InvalidRequest) as caught:
        await generate(make_settings(openai_emulator), request)

    assert caught.value.field == "mode"
    assert "local model" in caught.value.message
    assert openai_emulator.requests == []


async def test_an_api_error_of_ours_is_generation_failed(openai_emulator: OpenAIEmulator) -> None:
    # dall-e-3 takes at most 4000 characters; core's limits keep prompts far below that, so this is our bug.
    with pytest.raises(GenerationFailed, match="string_above_max_length, param prompt"):
        await generate(make_settings(openai_emulator), make_request(prompt="a cat " * 700))
    (sent,) = openai_emulator.requests_to(GENERATIONS)
    assert sent.status == 400


def test_backend_needs_a_key_and_an_openai_model() -> None:
    with pytest.raises(ConfigError, match="API key"):
        OpenAIBackend(OpenAISettings(api_key=None))
    with pytest.raises(ConfigError, match="IMAGEBOT_OPENAI__MODEL"):
        OpenAIBackend(OpenAISettings(api_key=SecretStr("sk-x"), model="sdxl"))
    with pytest.raises(
        ValueError, match="quality 'ultra' is not one of standard, hd, low, medium, high, auto"
    ):
        OpenAISettings(api_key=SecretStr("sk-x"), quality="ultra")  # settings refuse it before any backend


async def test_quality_is_spoken_in_each_models_words(openai_emulator: OpenAIEmulator) -> None:
    settings = make_settings(openai_emulator, quality="hd")
    await generate(settings, make_request(model="dall-e-3"))
    await generate(settings, make_request(model="gpt-image-1"))

    assert [call.body["quality"] for call in openai_emulator.requests_to(GENERATIONS)] == ["hd", "high"]
    assert all(call.status == 200 for call in openai_emulator.requests)
