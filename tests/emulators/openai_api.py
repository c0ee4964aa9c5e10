"""A small emulator of OpenAI's image and moderation endpoints, for the real `openai` SDK in tests.

    POST /v1/images/generations   dall-e-3 and gpt-image-1: sizes, n, response_format and quality checked
                                  per model; PNGs of the requested size whose colours derive from the prompt
    POST /v1/moderations          omni-moderation-latest shape; a few trigger words flag each category
    POST /v1/chat/completions     vision models (gpt-4o, gpt-4o-mini, gpt-4.1…): messages with text and
                                  image_url parts (data: URLs only, PNG/JPEG/WebP); the answer names the
                                  image's size and main colour, so a test can tell the image was read

Every request is recorded (`.requests`). Switches inject failures into the next N calls: `fail_next`
(500/503 with the real error body), `rate_limit_next` (429 with retry-after) and `hang_next` (no answer
until the client gives up). One deliberate difference from the real API: a wrong key is echoed back in full
in the 401 message (the real API masks its middle), so a test can tell whether an error leaks it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from PIL import Image, ImageDraw

DEFAULT_API_KEY = "sk-emulator-0123456789abcdef"

# A prompt containing this word is refused by the image endpoint's safety system.
CONTENT_POLICY_WORD = "forbidden"

IMAGE_SIZES: dict[str, tuple[str, ...]] = {
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536"),
}
MAX_IMAGES = {"dall-e-3": 1, "gpt-image-1": 10}
MAX_PROMPT_CHARS = {"dall-e-3": 4000, "gpt-image-1": 32000}
QUALITIES = {"dall-e-3": ("standard", "hd"), "gpt-image-1": ("low", "medium", "high", "auto")}

# Words (matched as whole words, any case) that flag a moderation category.
MODERATION_TRIGGERS: dict[str, tuple[str, ...]] = {
    "harassment": ("bully", "humiliate"),
    "harassment/threatening": ("threaten",),
    "hate": ("hateful",),
    "hate/threatening": (),
    "illicit": ("shoplift", "counterfeit"),
    "illicit/violent": ("pipebomb",),
    "self-harm": ("selfharm",),
    "self-harm/instructions": (),
    "self-harm/intent": (),
    "sexual": ("nude", "explicit"),
    "sexual/minors": (),
    "violence": ("gore", "massacre"),
    "violence/graphic": ("gore",),
}
_IMAGE_INPUT_CATEGORIES = ("self-harm", "sexual", "violence")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None
    status: int | None = None  # what the emulator answered; None while hanging or when it never answered


@dataclass
class _Fault:
    kind: str  # "status" or "hang"
    status: int = 500
    retry_after: float | None = None
    path: str | None = None  # only requests to this path; None: any


class OpenAIEmulator:
    """The emulator's state; `start()` serves it on a free port of 127.0.0.1."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, hang_s: float = 30.0) -> None:
        self.api_key = api_key
        self.hang_s = hang_s  # how long a hanging call waits at most (close() releases it at once)
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._released = asyncio.Event()
        # (certificate chain PEM, private key PEM): sign every image with Content Credentials, as OpenAI does
        self.sign_with: tuple[bytes, bytes] | None = None

    # -- switches -------------------------------------------------------------------------------------

    def fail_next(
        self, count: int = 1, status: int = 500, *, retry_after: float | None = None, path: str | None = None
    ) -> None:
        """The next `count` calls (to `path`, e.g. "/v1/moderations", or any) answer `status` (500 or 503)."""
        self._faults.extend(_Fault("status", status, retry_after, path) for _ in range(count))

    def rate_limit_next(self, count: int = 1, *, retry_after: float = 0.05, path: str | None = None) -> None:
        """The next `count` calls answer 429 with a retry-after header (seconds, may be fractional)."""
        self._faults.extend(_Fault("status", 429, retry_after, path) for _ in range(count))

    def hang_next(self, count: int = 1, *, path: str | None = None) -> None:
        """The next `count` calls never answer (until hang_s passes or the emulator closes)."""
        self._faults.extend(_Fault("hang", path=path) for _ in range(count))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/images/generations", self._images_generations)
        app.router.add_post("/v1/moderations", self._moderations)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- plumbing -------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body = await request.json() if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(request.method, request.path, dict(request.headers), body)
        self.requests.append(recorded)
        return recorded

    def _take_fault(self, path: str) -> _Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.path is None or fault.path == path:
                return self._faults.pop(index)
        return None

    async def _precheck(self, request: web.Request, recorded: RecordedRequest) -> web.Response | None:
        """Injected faults and the API key; None when the call may go on."""
        fault = self._take_fault(request.path)
        if fault is not None and fault.kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), timeout=self.hang_s)
            return _error(recorded, 504, "The server timed out.", "server_error")
        if fault is not None:
            headers = {} if fault.retry_after is None else {"retry-after": str(fault.retry_after)}
            if fault.status == 429:
                message = "Rate limit reached for requests per minute. Please try again shortly."
                return _error(recorded, 429, message, "requests", code="rate_limit_exceeded", headers=headers)
            message = {
                503: "The engine is currently overloaded, please try again later.",
            }.get(fault.status, "The server had an error while processing your request. Sorry about that!")
            return _error(recorded, fault.status, message, "server_error", headers=headers)

        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer ") or not authorization.removeprefix("Bearer "):
            message = "You didn't provide an API key. Provide it in an Authorization header (Bearer auth)."
            return _error(recorded, 401, message, "invalid_request_error")
        given = authorization.removeprefix("Bearer ")
        if given != self.api_key:
            message = (
                f"Incorrect API key provided: {given}. You can find your API key in your account settings."
            )
            return _error(recorded, 401, message, "invalid_request_error", code="invalid_api_key")
        if not isinstance(recorded.body, dict):
            message = "We could not parse the JSON body of your request."
            return _error(recorded, 400, message, "invalid_request_error")
        return None

    # -- endpoints ------------------------------------------------------------------------------------

    async def _images_generations(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = await self._precheck(request, recorded)
        if refusal is not None:
            return refusal
        body: dict[str, Any] = recorded.body
        model = body.get("model") or "dall-e-2"
        if model not in IMAGE_SIZES:
            return _invalid(recorded, f"Invalid value for 'model' = {model}.", "model")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _invalid(
                recorded, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
            )
        if len(prompt) > MAX_PROMPT_CHARS[model]:
            message = (
                f"Invalid 'prompt': string too long. Expected a string with maximum length "
                f"{MAX_PROMPT_CHARS[model]}, but got a string with length {len(prompt)} instead."
            )
            return _invalid(recorded, message, "prompt", "string_above_max_length")
        size = body.get("size") or "1024x1024"
        if model == "gpt-image-1" and size == "auto":
            size = "1024x1024"
        if size not in IMAGE_SIZES[model]:
            accepted = ", ".join(f"'{s}'" for s in IMAGE_SIZES[model])
            return _invalid(recorded, f"Invalid value: '{size}'. Supported values are: {accepted}.", "size")
        n = body.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= MAX_IMAGES[model]:
            message = (
                f"Invalid 'n': expected an integer from 1 to {MAX_IMAGES[model]} for {model}, got {n!r}."
            )
            return _invalid(recorded, message, "n")
        quality = body.get("quality")
        if quality is not None and quality not in QUALITIES[model]:
            return _invalid(recorded, f"Invalid value: '{quality}' for {model}.", "quality")
        response_format = body.get("response_format")
        if model == "gpt-image-1" and response_format is not None:
            return _invalid(
                recorded, "Unknown parameter: 'response_format'.", "response_format", "unknown_parameter"
            )
        if response_format not in (None, "url", "b64_json"):
            return _invalid(recorded, f"Invalid value: '{response_format}'.", "response_format")
        if re.search(rf"\b{CONTENT_POLICY_WORD}\b", prompt, re.IGNORECASE):
            if model == "dall-e-3":
                message = (
                    "Your request was rejected as a result of our safety system. Your prompt may contain "
                    "text that is not allowed by our safety system."
                )
                return _error(
                    recorded, 400, message, "invalid_request_error", code="content_policy_violation"
                )
            message = (
                "Your request was rejected by the safety system. If you believe this is an error, contact us."
            )
            return _error(recorded, 400, message, "image_generation_user_error", code="moderation_blocked")

        width, height = (int(part) for part in size.split("x"))
        pngs = await asyncio.to_thread(lambda: [_png(prompt, index, width, height) for index in range(n)])
        if self.sign_with is not None:
            pngs = await asyncio.to_thread(lambda: [_signed(png, *self.sign_with) for png in pngs])  # type: ignore[misc]
        data: list[dict[str, Any]] = []
        for index, png in enumerate(pngs):
            item: dict[str, Any] = {}
            if model == "dall-e-3" and response_format != "b64_json":
                digest = hashlib.sha256(png).hexdigest()[:16]
                item["url"] = f"http://127.0.0.1:{self._port}/expiring/{digest}-{index}.png?se=3600"
            else:
                item["b64_json"] = base64.b64encode(png).decode("ascii")
            if model == "dall-e-3":
                item["revised_prompt"] = f"A detailed, high-quality illustration of {prompt.strip()}"
            data.append(item)
        payload: dict[str, Any] = {"created": int(time.time()), "data": data}
        if model == "gpt-image-1":
            payload.update(
                background="opaque",
                output_format="png",
                quality=quality if quality not in (None, "auto") else "medium",
                size=size,
                usage={
                    "input_tokens": len(prompt.split()),
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": len(prompt.split())},
                    "output_tokens": 1056 * n,
                    "total_tokens": len(prompt.split()) + 1056 * n,
                },
            )
        recorded.status = 200
        return web.json_response(payload)

    async def _chat_completions(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = await self._precheck(request, recorded)
        if refusal is not None:
            return refusal
        body: dict[str, Any] = recorded.body
        model = body.get("model")
        if model not in VISION_MODELS:
            return _invalid(
                recorded,
                f"The model `{model}` does not exist or you do not have access to it.",
                "model",
                "model_not_found",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _invalid(
                recorded, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        images: list[tuple[int, int, str]] = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url = str((part.get("image_url") or {}).get("url", ""))
                    seen = _data_url_image(url)
                    if seen is None:
                        return _invalid(
                            recorded,
                            "Invalid image URL: expected a base64 data URL of an image.",
                            "messages",
                            "invalid_image_url",
                        )
                    images.append(seen)
        text = _chat_answer(images) if images else "I can only describe an image; none was given."
        recorded.status = 200
        return web.json_response(
            {
                "id": f"chatcmpl-{hashlib.sha256(text.encode()).hexdigest()[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 85 * len(images) + 40,
                    "completion_tokens": len(text.split()),
                    "total_tokens": 85 * len(images) + 40 + len(text.split()),
                },
            }
        )

    async def _moderations(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = await self._precheck(request, recorded)
        if refusal is not None:
            return refusal
        body: dict[str, Any] = recorded.body
        given = body.get("input")
        texts: list[str]
        if isinstance(given, str):
            texts = [given]
        elif isinstance(given, list) and all(isinstance(item, str) for item in given):
            texts = list(given)
        elif isinstance(given, list) and all(isinstance(item, dict) for item in given):
            # Multi-modal input is one result: the text parts are checked, images are ignored here.
            texts = [" ".join(item.get("text", "") for item in given if item.get("type") == "text")]
        else:
            return _invalid(recorded, "Invalid type for 'input'.", "input", "invalid_type")
        model = body.get("model") or "omni-moderation-latest"
        digest = hashlib.sha256(repr(texts).encode()).hexdigest()[:24]
        recorded.status = 200
        return web.json_response(
            {"id": f"modr-{digest}", "model": model, "results": [_moderation_result(text) for text in texts]}
        )


VISION_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini")
COLOUR_NAMES = {"red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 60, 200), "yellow": (230, 200, 40)}


def _data_url_image(url: str) -> tuple[int, int, str] | None:
    """(width, height, nearest colour name) of a data: URL image, or None when it isn't one."""
    match = re.match(r"^data:image/(png|jpeg|webp);base64,(.+)$", url, re.DOTALL)
    if match is None:
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(match[2], validate=True))) as image:
            r, g, b = image.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
            size = image.size
    except (ValueError, OSError):
        return None
    name = min(
        COLOUR_NAMES, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOUR_NAMES[n], (r, g, b), strict=True))
    )
    return size[0], size[1], name


def _chat_answer(images: list[tuple[int, int, str]]) -> str:
    width, height, colour = images[0]
    return "\n".join(
        (
            f"1. A {colour} abstract painting, {width} by {height}",
            f"2. Minimal {colour} colour field, soft gradient",
            f"- A {colour} wall in morning light, photograph",
            f"A flat {colour} background, vector art",
        )
    )


def _moderation_result(text: str) -> dict[str, Any]:
    categories: dict[str, bool] = {}
    scores: dict[str, float] = {}
    for category, words in MODERATION_TRIGGERS.items():
        hit = any(re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) for word in words)
        categories[category] = hit
        # Deterministic small scores for clean text, high ones for hits.
        noise = hashlib.sha256(f"{category}:{text}".encode()).digest()[0] / 255
        scores[category] = round(0.93 + 0.05 * noise, 6) if hit else round(0.001 * noise, 6)
    applied = {
        category: ["text", "image"] if category in _IMAGE_INPUT_CATEGORIES else ["text"]
        for category in MODERATION_TRIGGERS
    }
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


def _png(prompt: str, index: int, width: int, height: int) -> bytes:
    """A PNG whose colours derive from the prompt and the image's index in the response."""
    digest = hashlib.sha256(f"{index}:{prompt}".encode()).digest()
    image = Image.new("RGB", (width, height), tuple(digest[0:3]))
    ImageDraw.Draw(image).rectangle(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=tuple(digest[3:6])
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _signed(png: bytes, chain_pem: bytes, key_pem: bytes) -> bytes:
    """The PNG with a C2PA manifest naming the emulated service as its maker."""
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": "OpenAI API emulator", "version": "1"}],
        "title": "image.png",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
                            "softwareAgent": {"name": "OpenAI API emulator", "version": "1"},
                        }
                    ]
                },
            }
        ],
    }
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain_pem, key_pem, None)
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest) as builder:
        out = io.BytesIO()
        builder.sign(signer, "image/png", io.BytesIO(png), out)
        return out.getvalue()


def _error(
    recorded: RecordedRequest,
    status: int,
    message: str,
    error_type: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    recorded.status = status
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _invalid(
    recorded: RecordedRequest, message: str, param: str, code: str = "invalid_value"
) -> web.Response:
    return _error(recorded, 400, message, "invalid_request_error", code=code, param=param)
