"""The result cache: identical normalized parameters with an explicit seed return the stored images.

Only requests whose seeds the user chose are cached; random seeds never repeat, so caching them would only
fill Redis. The cached value is the DONE event; a hit is replayed under the new request's id and requester.
"""

from __future__ import annotations

import hashlib
import json
import logging

from redis.asyncio import Redis

from core.keys import CACHE_KEY, CACHE_TTL_S
from core.models.request import GenerationRequest
from core.models.result import EventKind, ResultEvent

log = logging.getLogger(__name__)


def cache_digest(request: GenerationRequest) -> str:
    """A digest of everything that determines the pixels, and nothing that does not (who asked, when)."""
    parameters = {
        "prompt": " ".join(request.prompt.split()),
        "negative": " ".join(request.negative_prompt.split()),
        "width": request.width,
        "height": request.height,
        "steps": request.steps,
        "guidance": round(request.guidance, 4),
        "seeds": list(request.seeds),
        "model": request.model,
        "mode": str(request.mode),
        "source": request.source_image,
        "strength": None if request.strength is None else round(request.strength, 4),
        "cloud": request.prefer_cloud,
        "mask": request.mask_image,
        "canvas": None if request.canvas is None else request.canvas.model_dump(mode="json"),
        "factor": request.upscale_factor,
        "loras": [[lora.name, round(lora.weight, 4)] for lora in request.loras],
        "control": None if request.control is None else request.control.model_dump(mode="json"),
        "sampler": request.sampler,
    }
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cacheable(request: GenerationRequest) -> bool:
    return request.seed_explicit


class ResultCache:
    def __init__(self, redis: Redis, ttl_s: int = CACHE_TTL_S) -> None:
        """`ttl_s`: how long a cached result is kept (settings.retention.results_days)."""
        self.redis = redis
        self.ttl_s = ttl_s

    async def get(self, request: GenerationRequest) -> ResultEvent | None:
        if not cacheable(request):
            return None
        raw = await self.redis.get(CACHE_KEY.format(digest=cache_digest(request)))
        if raw is None:
            return None
        stored = ResultEvent.model_validate_json(raw)
        log.info("request %s: served from cache (was %s)", request.request_id, stored.request_id)
        return stored.model_copy(
            update={
                "request_id": request.request_id,
                "requester": request.requester,
                "reply_to": request.reply_to,
                "cached": True,
                "duration_s": 0.0,
                "timings": {},
            }
        )

    async def put(self, request: GenerationRequest, event: ResultEvent) -> None:
        if not cacheable(request) or event.kind is not EventKind.DONE:
            return
        key = CACHE_KEY.format(digest=cache_digest(request))
        await self.redis.set(key, event.model_dump_json(), ex=self.ttl_s)

    async def forget(self, request: GenerationRequest, only_from: set[str] | None = None) -> bool:
        """Drop the cached result for these parameters (a moderator deleted it); with `only_from`, only when it
        was made by one of those request ids (a user's /forget). True when an entry was dropped."""
        key = CACHE_KEY.format(digest=cache_digest(request))
        if only_from is not None:
            raw = await self.redis.get(key)
            if raw is None or ResultEvent.model_validate_json(raw).request_id not in only_from:
                return False
        return bool(await self.redis.delete(key))
