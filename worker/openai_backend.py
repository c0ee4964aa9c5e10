"""OpenAI's image API as an ImageBackend: dall-e-3 and gpt-image-1 through the official `openai` SDK.

What differs from a local diffusers model, and how this backend bridges it:

- Sizes: each model accepts three fixed sizes; the request's width × height maps to the one with the
  closest aspect ratio (`core.models.catalog.nearest_fixed_size`), and a note tells the user.
- Negative prompts: the API has none, so they are folded into the prompt ("… Avoid: a, b.").
- Several images: dall-e-3 renders one image per call, so an n-image request makes n concurrent calls
  (bounded per backend); gpt-image-1 takes n in one call.
- Seeds: OpenAI has none. `GeneratedImage.seed` is the request's seed, kept for bookkeeping only (grid
  order, button ids); the same seed does not reproduce the same picture.
- Images always come back as base64 (never dall-e-3's expiring URL) and are decoded to PIL images.
- img2img, variations and upscales are not offered here: they raise InvalidRequest with a way forward.

Errors: a prompt refused by OpenAI's safety system is `PromptRejected` (categories ("openai_policy",));
a refused key, rate limits, 5xx, timeouts and connection failures are `BackendUnavailable`; anything else
the API refuses, and an unusable answer, is `GenerationFailed`. Messages are ours and short: they never
repeat the API's text for errors other than the policy refusal, so the key (which OpenAI echoes partly
in its 401 message) never reaches a user or a log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
from dataclasses import dataclass
from typing import Literal, cast

import openai
from PIL import Image

from core.errors import (
    BackendUnavailable,
    ConfigError,
    GenerationFailed,
    ImagebotError,
    InvalidRequest,
    PromptRejected,
)
from core.models.catalog import BackendKind, ModelSpec, get_model, nearest_fixed_size
from core.models.pricing import QUALITIES, api_quality
from core.models.request import GenerationRequest, Mode
from core.settings import OpenAISettings
from worker.backend import GeneratedImage, Generation, ProgressCallback

log = logging.getLogger(__name__)

DALL_E_3 = "dall-e-3"
MAX_CONCURRENT_CALLS = 4
POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
_MAX_POLICY_MESSAGE = 300

Quality = Literal["standard", "hd", "low", "medium", "high", "auto"]


@dataclass(frozen=True)
class _Rendered:
    png: bytes
    revised_prompt: str | None


def fold_negative(prompt: str, negative_prompt: str) -> str:
    """The prompt with the negative prompt folded in as text: "a cat. Avoid: dogs, blur."."""
    prompt = prompt.strip()
    avoid = ", ".join(part.strip() for part in negative_prompt.split(",") if part.strip())
    if not avoid:
        return prompt
    if not prompt.endswith((".", "!", "?")):
        prompt += "."
    return f"{prompt} Avoid: {avoid}."


class OpenAIBackend:
    """Renders requests with OpenAI's image models (see the module docstring for the differences)."""

    name = "openai"

    def __init__(self, settings: OpenAISettings, *, max_concurrent_calls: int = MAX_CONCURRENT_CALLS) -> None:
        if settings.api_key is None or not settings.enabled:
            raise ConfigError(
                "The OpenAI backend needs an API key: set OPENAI_API_KEY or IMAGEBOT_OPENAI__API_KEY."
            )
        fallback = get_model(settings.model) if _is_known(settings.model) else None
        if fallback is None or fallback.backend is not BackendKind.OPENAI:
            raise ConfigError(
                f"IMAGEBOT_OPENAI__MODEL: “{settings.model}” is not an OpenAI model; "
                "use dall-e-3 or gpt-image-1."
            )
        if settings.quality not in QUALITIES:
            raise ConfigError(
                f"IMAGEBOT_OPENAI__QUALITY: “{settings.quality}” is not a quality OpenAI offers; "
                f"use one of {', '.join(QUALITIES)}."
            )
        self._settings = settings
        self._fallback = fallback
        self._calls = asyncio.Semaphore(max_concurrent_calls)
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key.get_secret_value(),
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    def model_for(self, request: GenerationRequest) -> ModelSpec:
        """request.model when it names an OpenAI model, else the configured one (the fallback case)."""
        if _is_known(request.model):
            spec = get_model(request.model)
            if spec.backend is BackendKind.OPENAI:
                return spec
        return self._fallback

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
        *,
        control: Image.Image | None = None,
    ) -> Generation:
        if source is not None or control is not None or request.mode not in (Mode.TXT2IMG, Mode.REROLL):
            raise InvalidRequest(
                "mode",
                "The OpenAI models can only draw from a prompt: variations, upscales and image-to-image are "
                "not available with them. Pick a local model (for example --model sdxl) for that.",
            )
        spec = self.model_for(request)
        width, height = nearest_fixed_size(spec, request.width, request.height)
        size = f"{width}x{height}"
        prompt = fold_negative(request.prompt, request.negative_prompt)
        log.info(
            "request %s: %d image(s) from openai %s at %s", request.request_id, request.n, spec.name, size
        )
        log.debug("request %s: openai prompt %r", request.request_id, prompt)

        done = 0

        async def call(n: int) -> list[_Rendered]:
            nonlocal done
            async with self._calls:
                rendered = await self._render(request.request_id, spec, prompt, size, n)
            done += n
            if on_progress is not None:
                on_progress(done, request.n)
            return rendered

        if spec.name == DALL_E_3:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(call(1)) for _ in request.seeds]
            except ExceptionGroup as failures:
                raise _first_error(failures) from None
            rendered = [item for task in tasks for item in task.result()]
        else:
            rendered = await call(request.n)
        if len(rendered) != request.n:
            raise GenerationFailed(f"OpenAI returned {len(rendered)} image(s) instead of {request.n}.")

        images = await asyncio.to_thread(_decode_all, [item.png for item in rendered])
        revised = next((item.revised_prompt for item in rendered if item.revised_prompt), None)
        return Generation(
            images=tuple(
                GeneratedImage(image, seed, upstream=item.png)
                for image, seed, item in zip(images, request.seeds, rendered, strict=True)
            ),
            model=spec.name,
            backend=self.name,
            revised_prompt=revised,
            note=_note(request, spec, width, height),
        )

    async def _render(
        self, request_id: str, spec: ModelSpec, prompt: str, size: str, n: int
    ) -> list[_Rendered]:
        quality = cast(Quality, api_quality(spec.name, self._settings.quality))
        try:
            if spec.name == DALL_E_3:
                response = await self._client.images.generate(
                    model=spec.repo_id,
                    prompt=prompt,
                    size=size,
                    n=n,
                    quality=quality,
                    response_format="b64_json",
                )
            else:  # GPT image models always answer in base64 and refuse response_format.
                response = await self._client.images.generate(
                    model=spec.repo_id,
                    prompt=prompt,
                    size=size,
                    n=n,
                    quality=quality,
                )
        except openai.OpenAIError as exc:
            raise _translate(request_id, spec.name, exc) from None
        rendered = []
        for item in response.data or ():
            if not item.b64_json:
                raise GenerationFailed("OpenAI answered without image data.")
            try:
                png = base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError):
                raise GenerationFailed("OpenAI answered with image data that is not valid base64.") from None
            rendered.append(_Rendered(png, item.revised_prompt))
        return rendered

    async def close(self) -> None:
        await self._client.close()


def _is_known(name: str) -> bool:
    try:
        get_model(name)
    except InvalidRequest:
        return False
    return True


def _translate(request_id: str, model: str, exc: openai.OpenAIError) -> ImagebotError:
    """Our error for an SDK error; the API's text is kept only for policy refusals (it holds no secret)."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    log.warning(
        "request %s: openai %s failed: %s (status %s, code %s)",
        request_id,
        model,
        type(exc).__name__,
        status,
        code,
    )
    if isinstance(exc, openai.BadRequestError) and code in POLICY_CODES:
        api_message = " ".join(str(exc.body.get("message", "")).split()) if isinstance(exc.body, dict) else ""
        api_message = (
            api_message[:_MAX_POLICY_MESSAGE] or "The prompt is not allowed by OpenAI's safety system."
        )
        return PromptRejected(
            f"OpenAI refused this prompt: {api_message} Please rephrase it and try again.",
            categories=("openai_policy",),
            code="openai_policy",
        )
    if isinstance(exc, openai.APITimeoutError):
        return BackendUnavailable(f"OpenAI did not answer in time ({model}).")
    if isinstance(exc, openai.APIConnectionError):
        return BackendUnavailable(f"OpenAI could not be reached ({model}).")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return BackendUnavailable(f"OpenAI refused our API key (HTTP {status}); an operator must check it.")
    if isinstance(exc, openai.RateLimitError):
        return BackendUnavailable(f"OpenAI is rate-limiting us (HTTP 429, {code or 'rate limit'}).")
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return BackendUnavailable(f"OpenAI's image service failed (HTTP {exc.status_code}).")
    if isinstance(exc, openai.APIStatusError):
        param = getattr(exc, "param", None)
        detail = ", ".join(part for part in (code, f"param {param}" if param else None) if part)
        suffix = f", {detail}" if detail else ""
        return GenerationFailed(f"OpenAI refused the request (HTTP {exc.status_code}{suffix}).")
    return GenerationFailed(f"OpenAI failed ({type(exc).__name__}).")


def _first_error(failures: BaseExceptionGroup[Exception]) -> Exception:
    """The most telling error of concurrent calls: a policy refusal first, then any of ours."""
    leaves: list[Exception] = []
    stack: list[BaseException] = [failures]
    while stack:
        current = stack.pop()
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        elif isinstance(current, Exception):
            leaves.append(current)
    for wanted in (PromptRejected, ImagebotError, Exception):
        for leaf in leaves:
            if isinstance(leaf, wanted):
                return leaf
    return GenerationFailed("OpenAI failed.")


def _decode_all(blobs: list[bytes]) -> list[Image.Image]:
    images = []
    for blob in blobs:
        try:
            with Image.open(io.BytesIO(blob)) as opened:
                images.append(opened.convert("RGB"))
        except (OSError, ValueError):
            raise GenerationFailed("OpenAI answered with an image that cannot be decoded.") from None
    return images


def _note(request: GenerationRequest, spec: ModelSpec, width: int, height: int) -> str | None:
    parts = []
    if spec.name != request.model and _is_known(request.model) and get_model(request.model).name != spec.name:
        parts.append(f"Rendered with OpenAI {spec.name} instead of {request.model}.")
    if (width, height) != (request.width, request.height):
        asked = f"{request.width}×{request.height}"
        parts.append(f"{spec.name} draws {width}×{height}, the size closest to the {asked} asked.")
    return " ".join(parts) or None
