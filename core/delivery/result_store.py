"""Finished results by request id, so buttons on old messages (U2, V3, 🔄) can find their parent's images.

Storage keys are content-addressed, so two requests that made the same bytes (a cache hit, or the same seed
rendered again anywhere) share one stored object. Saving a result records its request as a reference to each
of its files (a Redis set per key); `release` drops one request's references and names the files nobody uses
any more, the only ones a moderator's delete may remove.
"""

from __future__ import annotations

from redis.asyncio import Redis

from core.delivery.history import HistoryIndex
from core.errors import NotFound
from core.keys import IMAGE_REFS_KEY, RESULT_KEY, RESULT_TTL_S
from core.models.result import EventKind, ResultEvent

# KEYS: the reference sets of the files. ARGV[1]: the request id.
# Returns the indices (1-based) of the files this request referenced and nobody references any more.
_RELEASE = """
local unused = {}
for i, key in ipairs(KEYS) do
  local removed = redis.call('SREM', key, ARGV[1])
  if redis.call('SCARD', key) == 0 then
    redis.call('DEL', key)
    if removed == 1 then table.insert(unused, i) end
  end
end
return unused
"""


def stored_keys(event: ResultEvent) -> list[str]:
    """The storage keys a result shows: its images, grid and preview."""
    shown = [*event.images, event.grid, event.preview]
    return list(dict.fromkeys(image.key for image in shown if image is not None))


class ResultStore:
    def __init__(self, redis: Redis, ttl_s: int = RESULT_TTL_S) -> None:
        """`ttl_s`: how long a result is kept (settings.retention.results_days)."""
        self.redis = redis
        self.ttl_s = ttl_s
        self._release = redis.register_script(_RELEASE)
        self.history = HistoryIndex(redis, ttl_s=ttl_s)

    async def save(self, event: ResultEvent) -> None:
        """Keep the result and record it as a reference to each of its files (cache hits included); a result
        that shows images goes into its owner's /history (core.delivery.history)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(RESULT_KEY.format(request_id=event.request_id), event.model_dump_json(), ex=self.ttl_s)
            for key in stored_keys(event):
                refs = IMAGE_REFS_KEY.format(key=key)
                pipe.sadd(refs, event.request_id)
                pipe.expire(refs, self.ttl_s)  # outlives every result that shows the file
            await pipe.execute()
        if event.kind is EventKind.DONE and event.images:
            requester = event.requester
            await self.history.add(
                f"{requester.platform}:{requester.user_id}", event.request_id, event.created_at
            )

    async def exists(self, request_id: str) -> bool:
        """Whether the request already ended (a result of any kind is stored)."""
        return bool(await self.redis.exists(RESULT_KEY.format(request_id=request_id)))

    async def load(self, request_id: str) -> ResultEvent:
        raw = await self.redis.get(RESULT_KEY.format(request_id=request_id))
        if raw is None:
            raise NotFound("I can't find the images for that button any more; please run /imagine again.")
        return ResultEvent.model_validate_json(raw)

    async def release(self, request_id: str, keys: list[str]) -> list[str]:
        """Drop `request_id`'s references to `keys`; returns those no other request still references.

        A file this request never referenced (a result saved before references were kept) is not returned:
        nothing says who else shows it, so it stays.
        """
        if not keys:
            return []
        unused = await self._release(keys=[IMAGE_REFS_KEY.format(key=key) for key in keys], args=[request_id])
        return [keys[int(index) - 1] for index in unused]

    async def references(self, key: str) -> set[str]:
        """The request ids whose results show this file."""
        members = await self.redis.smembers(IMAGE_REFS_KEY.format(key=key))  # type: ignore[misc]
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}
