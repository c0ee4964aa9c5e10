"""The paid fallback's price table: model × quality × size, as settings hold it and the budget charges it."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import ConfigError
from core.governance.quotas import paid_quote, spend_units
from core.models.pricing import DEFAULT_PRICES, api_quality, quote
from core.models.request import GenerationRequest, Platform, Requester
from core.settings import OpenAISettings, load_settings


def request(
    model: str = "gpt-image-1", width: int = 1024, height: int = 1024, n: int = 1
) -> GenerationRequest:
    return GenerationRequest(
        request_id="abcdefghijklmnop",
        prompt="a lighthouse",
        width=width,
        height=height,
        steps=1,
        guidance=0.0,
        seeds=tuple(range(n)),
        model=model,
        requester=Requester(platform=Platform.CLI, user_id="u", chat_id="c"),
    )


@pytest.mark.parametrize(
    ("model", "quality", "width", "height", "size", "word", "each"),
    [
        ("gpt-image-1", "low", 1024, 1024, "1024x1024", "low", 0.011),
        ("gpt-image-1", "low", 832, 1216, "1024x1536", "low", 0.016),
        ("gpt-image-1", "medium", 1216, 832, "1536x1024", "medium", 0.063),
        ("gpt-image-1", "high", 1024, 1024, "1024x1024", "high", 0.167),
        ("gpt-image-1", "high", 1024, 1536, "1024x1536", "high", 0.25),
        ("gpt-image-1", "standard", 1024, 1024, "1024x1024", "medium", 0.042),  # dall-e-3's word, mapped
        ("dall-e-3", "standard", 1024, 1024, "1024x1024", "standard", 0.04),
        ("dall-e-3", "standard", 1920, 1080, "1792x1024", "standard", 0.08),
        ("dall-e-3", "hd", 1024, 1024, "1024x1024", "hd", 0.08),
        ("dall-e-3", "high", 768, 1344, "1024x1792", "hd", 0.12),  # gpt-image-1's word, mapped
    ],
)
def test_every_model_quality_and_size_has_its_own_price(
    model: str, quality: str, width: int, height: int, size: str, word: str, each: float
) -> None:
    priced = quote(DEFAULT_PRICES, "gpt-image-1", quality, request(model, width, height, n=3))
    assert (priced.model, priced.quality, priced.size) == (model, word, size)
    assert priced.per_image_usd == each and priced.total_usd == pytest.approx(3 * each)
    assert priced.details()["cost_usd"] == f"{3 * each:.4f}"


def test_a_local_model_handed_to_openai_is_priced_as_the_configured_fallback() -> None:
    settings = OpenAISettings(model="dall-e-3", quality="hd")
    priced = paid_quote(settings, request("sdxl", 1344, 768, n=2))
    assert (priced.model, priced.size, priced.total_usd) == ("dall-e-3", "1792x1024", 0.24)
    assert api_quality("dall-e-3", "low") == "standard" and api_quality("gpt-image-1", "hd") == "high"


def test_spend_is_counted_finer_than_a_cent() -> None:
    assert spend_units(0.011) == 110 and spend_units(5.0) == 50_000


def test_the_table_can_be_set_from_the_environment_and_must_price_what_can_be_drawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table: dict[str, Any] = {
        "gpt-image-1": {"low": {"1024x1024": 0.02, "1024x1536": 0.03, "1536x1024": 0.03}},
        "dall-e-3": {"standard": {"1024x1024": 0.05, "1024x1792": 0.09, "1792x1024": 0.09}},
    }
    import json

    monkeypatch.setenv("IMAGEBOT_OPENAI__PRICES", json.dumps(table))
    monkeypatch.setenv("IMAGEBOT_OPENAI__QUALITY", "low")
    settings = load_settings()
    assert paid_quote(settings.openai, request(n=2)).total_usd == 0.04

    monkeypatch.setenv("IMAGEBOT_OPENAI__QUALITY", "high")  # gpt-image-1 high has no row
    with pytest.raises(
        ConfigError,
        match=r"IMAGEBOT_OPENAI: .*no price for dall-e-3 hd 1024x1024, .*gpt-image-1 high 1024x1024",
    ):
        load_settings()
    monkeypatch.setenv("IMAGEBOT_OPENAI__QUALITY", "best")
    with pytest.raises(
        ConfigError, match="quality 'best' is not one of standard, hd, low, medium, high, auto"
    ):
        load_settings()
