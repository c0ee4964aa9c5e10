"""/describe backends: an image → four prompt suggestions.

Two implementations of one Protocol, chosen by settings.captioner (core.jobs.captions routes the job):

- `TransformersCaptioner`, on the GPU queue: any transformers image-to-text model that loads with
  `AutoProcessor` and `AutoModelForImageTextToText` (BLIP, BLIP-2, GIT…), from the Hub or a folder. The four
  suggestions are, honestly: the model's four best beams (beam search, 4 returned sequences), deduplicated,
  topped up by nucleus sampling with seeds 1, 2, 3… when beams repeat; if the model still can't give four
  different captions, its best caption is repeated with a style added ("…, as a painting") and the result
  says so.
- `OpenAICaptioner`, on the cloud queue: a vision chat model (chat completions with the image inline as a data
  URL) asked for four prompts, one per line.

Both return plain prompt text; the service imagines a suggestion through the normal /imagine path, so the
grammar and the prompt check still read it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from core.errors import BackendUnavailable, ConfigError, GenerationFailed
from core.models.describe import SUGGESTIONS
from core.settings import CaptionerSettings, OpenAISettings
from worker.device import DeviceGuard

log = logging.getLogger(__name__)

SAMPLE_TRIES = 8  # seeds tried for more distinct captions when the beams repeat
EXPANSIONS = ("as a painting", "as a photograph", "in soft light", "as a detailed illustration")
MAX_SUGGESTION_CHARS = 300
INSTRUCTION = (
    f"Write {SUGGESTIONS} different prompts that a text-to-image model could use to draw an image like this "
    "one. One prompt per line, no numbering, no quotes, each under 40 words."
)


@dataclass(frozen=True)
class Suggestions:
    prompts: tuple[str, ...]
    backend: str  # "transformers:<model>" or "openai:<model>"
    note: str | None = None  # said with the result, e.g. that some prompts are one caption with styles added


class Captioner(Protocol):
    name: str

    async def suggest(self, image: bytes) -> Suggestions: ...

    async def close(self) -> None: ...


def clean(text: str) -> str:
    """One suggestion as a prompt: one line, no list marks or quotes, no flags, at most MAX_SUGGESTION_CHARS."""
    text = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", text.strip())
    text = " ".join(text.replace("--", "-").split()).strip(" \"'“”")
    return text[:MAX_SUGGESTION_CHARS].strip()


def distinct(candidates: list[str]) -> list[str]:
    """Cleaned, non-empty, without repeats (case-insensitively), in order."""
    seen: set[str] = set()
    found = []
    for candidate in map(clean, candidates):
        if candidate and candidate.lower() not in seen:
            seen.add(candidate.lower())
            found.append(candidate)
    return found


def _rgb(image: bytes) -> Image.Image:
    with Image.open(io.BytesIO(image)) as opened:
        return opened.convert("RGB")


class TransformersCaptioner:
    """A local captioning model, loaded once; captions run in a thread, one at a time."""

    def __init__(
        self, settings: CaptionerSettings, device: str = "cpu", guard: DeviceGuard | None = None
    ) -> None:
        if not settings.local_model:
            raise ConfigError("IMAGEBOT_CAPTIONER__LOCAL_MODEL: name a transformers image-to-text model.")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = f"transformers:{settings.local_model}"
        self.settings = settings
        self.device = device
        self.processor: Any = AutoProcessor.from_pretrained(settings.local_model)
        model: Any = AutoModelForImageTextToText.from_pretrained(settings.local_model)
        self.model: Any = model.to(device).eval()
        self._lock = threading.Lock()
        self.guard = (
            guard  # the GPU worker's: one model call at a time on the device, renders and captions alike
        )
        log.info("captioner %s loaded on %s", settings.local_model, device)

    async def suggest(self, image: bytes) -> Suggestions:
        if self.guard is not None:
            return await self.guard.run(lambda _interruption: self._suggest(image))
        return await asyncio.to_thread(self._suggest, image)

    def _suggest(self, image: bytes) -> Suggestions:
        import torch

        inputs = self.processor(images=_rgb(image), return_tensors="pt").to(self.device)
        tokens = self.settings.max_new_tokens
        with self._lock, torch.inference_mode():
            beams = self.model.generate(
                **inputs, num_beams=SUGGESTIONS, num_return_sequences=SUGGESTIONS, max_new_tokens=tokens
            )
            found = distinct(self.processor.batch_decode(beams, skip_special_tokens=True))
            for seed in range(1, SAMPLE_TRIES + 1):
                if len(found) >= SUGGESTIONS:
                    break
                torch.manual_seed(seed)
                sampled = self.model.generate(**inputs, do_sample=True, top_p=0.9, max_new_tokens=tokens)
                found = distinct([*found, *self.processor.batch_decode(sampled, skip_special_tokens=True)])
        return _four(found, self.name)

    async def close(self) -> None:
        return None


def _four(found: list[str], backend: str) -> Suggestions:
    """Four suggestions: the distinct captions, topped up with the best one in added styles (and said so)."""
    if not found:
        raise GenerationFailed("the captioner produced no text for this image")
    if len(found) >= SUGGESTIONS:
        return Suggestions(tuple(found[:SUGGESTIONS]), backend)
    base = found[0]
    extra = [f"{base}, {style}" for style in EXPANSIONS if f"{base}, {style}" not in found]
    prompts = tuple([*found, *extra][:SUGGESTIONS])
    note = (
        f"The model gave {len(found)} distinct caption(s); the others are its first one with a style added."
    )
    return Suggestions(prompts, backend, note)


class OpenAICaptioner:
    """OpenAI's vision model through chat completions, the image inline as a data URL."""

    def __init__(self, settings: OpenAISettings, captioner: CaptionerSettings) -> None:
        if settings.api_key is None or not settings.enabled:
            raise ConfigError("The OpenAI describer needs an API key: set OPENAI_API_KEY.")
        import openai

        self.name = f"openai:{captioner.openai_model}"
        self.model = captioner.openai_model
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key.get_secret_value(),
            base_url=settings.base_url,
            timeout=captioner.timeout_s,
            max_retries=settings.max_retries,
        )

    async def suggest(self, image: bytes) -> Suggestions:
        import openai

        png = await asyncio.to_thread(_as_png, image)
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        try:
            answer = await self._client.chat.completions.create(
                model=self.model,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": INSTRUCTION},
                            {"type": "image_url", "image_url": {"url": url}},
                        ],
                    }
                ],
            )
        except (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError) as exc:
            raise BackendUnavailable(f"OpenAI's vision model is unavailable ({type(exc).__name__}).") from exc
        except openai.APIStatusError as exc:
            raise GenerationFailed(
                f"OpenAI's vision model refused the request (HTTP {exc.status_code})."
            ) from exc
        text = answer.choices[0].message.content or "" if answer.choices else ""
        return _four(distinct(text.splitlines()), self.name)

    async def close(self) -> None:
        await self._client.close()


def _as_png(image: bytes) -> bytes:
    out = io.BytesIO()
    _rgb(image).save(out, format="PNG")
    return out.getvalue()
