"""What one paid (OpenAI) image costs, by model × quality × size, and which quality word each model takes.

The price table lives in settings (`IMAGEBOT_OPENAI__PRICES`, JSON: model → quality → "WxH" → USD per image);
DEFAULT_PRICES is OpenAI's list price when this was written. The daily budget of the paid fallback
(core.governance.quotas) is charged with `request_price`, so a high-quality portrait costs what OpenAI bills
for it, not a flat price per image.

`IMAGEBOT_OPENAI__QUALITY` may be written in either model's words ("standard"/"hd" or "low"/"medium"/"high");
`api_quality` gives each model the nearest word it knows, and the price is looked up under that word.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import InvalidRequest
from core.models.catalog import BackendKind, ModelSpec, get_model, nearest_fixed_size
from core.models.request import GenerationRequest

DALL_E_3 = "dall-e-3"
GPT_IMAGE_1 = "gpt-image-1"

PriceTable = Mapping[str, Mapping[str, Mapping[str, float]]]

QUALITY_WORDS: dict[str, dict[str, str]] = {
    DALL_E_3: {
        "standard": "standard",
        "hd": "hd",
        "low": "standard",
        "medium": "standard",
        "high": "hd",
        "auto": "standard",
    },
    GPT_IMAGE_1: {
        "standard": "medium",
        "hd": "high",
        "low": "low",
        "medium": "medium",
        "high": "high",
        "auto": "auto",
    },
}
QUALITIES = tuple(QUALITY_WORDS[DALL_E_3])

# USD per image (OpenAI's list prices). gpt-image-1's "auto" quality is billed as what it picks: priced as high.
_GPT_IMAGE_1_HIGH = {"1024x1024": 0.167, "1024x1536": 0.25, "1536x1024": 0.25}
DEFAULT_PRICES: dict[str, dict[str, dict[str, float]]] = {
    GPT_IMAGE_1: {
        "low": {"1024x1024": 0.011, "1024x1536": 0.016, "1536x1024": 0.016},
        "medium": {"1024x1024": 0.042, "1024x1536": 0.063, "1536x1024": 0.063},
        "high": dict(_GPT_IMAGE_1_HIGH),
        "auto": dict(_GPT_IMAGE_1_HIGH),
    },
    DALL_E_3: {
        "standard": {"1024x1024": 0.04, "1024x1792": 0.08, "1792x1024": 0.08},
        "hd": {"1024x1024": 0.08, "1024x1792": 0.12, "1792x1024": 0.12},
    },
}


def api_quality(model: str, quality: str) -> str:
    """The quality word `model` takes for the configured `quality` (either model's words)."""
    return QUALITY_WORDS.get(model, QUALITY_WORDS[GPT_IMAGE_1])[quality]


def paid_model(requested: str, fallback: str) -> ModelSpec:
    """The OpenAI model that renders a request for `requested`: itself when it is one, else `fallback`."""
    try:
        spec: ModelSpec | None = get_model(requested)
    except InvalidRequest:  # an unknown name: the fallback renders it
        spec = None
    if spec is not None and spec.backend is BackendKind.OPENAI:
        return spec
    return get_model(fallback)


def missing_prices(prices: PriceTable, model: str, quality: str) -> list[str]:
    """The sizes of `model` at the configured `quality` that the table has no price for (empty: all priced)."""
    spec = get_model(model)
    word = api_quality(spec.name, quality)
    row = prices.get(spec.name, {}).get(word, {})
    return [f"{spec.name} {word} {w}x{h}" for w, h in spec.fixed_sizes if f"{w}x{h}" not in row]


def image_price(
    prices: PriceTable, spec: ModelSpec, quality: str, width: int, height: int
) -> tuple[str, str, float]:
    """(quality word, "WxH", USD) of one image of `spec` drawn for a width × height request.

    KeyError when the table has no price for it (settings check the configured model's row at start-up)."""
    word = api_quality(spec.name, quality)
    w, h = nearest_fixed_size(spec, width, height)
    size = f"{w}x{h}"
    return word, size, float(prices[spec.name][word][size])


@dataclass(frozen=True)
class Quote:
    """What a request costs on the paid service: which model, quality and size OpenAI draws, and the price."""

    model: str
    quality: str
    size: str
    per_image_usd: float
    images: int

    @property
    def total_usd(self) -> float:
        return round(self.per_image_usd * self.images, 6)

    def details(self) -> dict[str, str]:
        """For the audit trail and the job's record."""
        return {
            "paid_model": self.model,
            "paid_quality": self.quality,
            "paid_size": self.size,
            "cost_usd": f"{self.total_usd:.4f}",
        }


def quote(prices: PriceTable, fallback_model: str, quality: str, request: GenerationRequest) -> Quote:
    """The price of `request` on OpenAI: its own model when it names one, else `fallback_model`, at the size
    that model draws for the request's aspect ratio. KeyError when the table lacks that price."""
    spec = paid_model(request.model, fallback_model)
    word, size, price = image_price(prices, spec, quality, request.width, request.height)
    return Quote(spec.name, word, size, price, request.n)
