"""Taking a result down: its images leave the chat and the result, and storage loses only what nobody else shows.

Storage keys are content-addressed, so the same bytes made twice (a cache hit, or anyone re-rendering a seed
from a caption, in any community) are one stored object. Every saved result references its files
(ResultStore); a takedown drops this request's references and deletes only the files no other request still
references. The taken-down result loses the images either way, and the cache entry for its parameters is
dropped so it is never replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from core.delivery.result_store import ResultStore, stored_keys
from core.jobs.cache import ResultCache
from core.models.request import GenerationRequest
from core.models.result import ResultEvent, StoredImage
from core.settings import RetentionSettings
from core.storage.protocol import ImageStore


@dataclass(frozen=True)
class TakedownOutcome:
    deleted: int  # files removed from storage
    kept: int  # files other results still show, left in place


class Takedown:
    def __init__(self, redis: Redis, store: ImageStore, retention: RetentionSettings | None = None) -> None:
        retention = retention or RetentionSettings()
        self.store = store
        self.results = ResultStore(redis, ttl_s=retention.results_s)
        self.cache = ResultCache(redis, ttl_s=retention.results_s)

    async def remove(
        self, request: GenerationRequest, result: ResultEvent, chosen: list[StoredImage]
    ) -> TakedownOutcome:
        """Take `chosen` images of `result` down, with the grid and the preview, which show every image."""
        removed = result.model_copy(
            update={
                "images": tuple(image for image in result.images if image not in chosen),
                "grid": None,
                "preview": None,
            }
        )
        doomed = [key for key in stored_keys(result) if key not in stored_keys(removed)]
        unused = await self.results.release(request.request_id, doomed)
        for key in unused:
            await self.store.delete(key)
        await self.cache.forget(request)
        await self.results.save(removed)
        return TakedownOutcome(deleted=len(unused), kept=len(doomed) - len(unused))
