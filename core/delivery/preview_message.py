"""Which chat message shows a request's live preview, for front ends that show it in a message of its own.

A Telegram text message can't become a photo by editing, so the Telegram bot shows a render's live preview in a
photo message it sends when the first preview arrives, and removes it when the result is delivered. Progress
events and the result may be handled by different bot processes (replicas, or a restart in between), so where
that photo is lives in Redis, one small string per request, in one of four states:

    (no key)   no photo: a preview may start one (`claim`)
    ""         claimed: one process is sending the photo
    "<id>"     the photo's message id (`record`): progress edits it, the end removes it
    "-"        ended (`end`): no photo may be started any more

`end` wins every race with a photo on its way: a process whose `record` finds the request ended removes the photo
it just sent. A photo's id lives PREVIEW_MESSAGE_TTL_S, as long as Telegram lets a bot delete its own messages; the
ended mark only PREVIEW_ENDED_TTL_S (every result writes one), long enough to turn away a late progress event.
"""

from __future__ import annotations

from redis.asyncio import Redis

from core.claims import RELEASE
from core.keys import PREVIEW_ENDED_TTL_S, PREVIEW_MESSAGE_KEY, PREVIEW_MESSAGE_TTL_S

CLAIMED = ""
ENDED = "-"

# Record the photo's id only while this request's claim is still there (not ended meanwhile).
_RECORD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
# End the request: a claim (or nothing) becomes ENDED; a recorded photo stays until `forget`. Returns the value.
_END = """
local value = redis.call('GET', KEYS[1])
if not value or value == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return false
end
return value
"""


class PreviewMessages:
    def __init__(
        self,
        redis: Redis,
        platform: str,
        ttl_s: int = PREVIEW_MESSAGE_TTL_S,
        ended_ttl_s: int = PREVIEW_ENDED_TTL_S,
    ) -> None:
        self.redis = redis
        self.platform = platform
        self.ttl_s = ttl_s
        self.ended_ttl_s = ended_ttl_s
        # gives a preview claim back, unless the request ended (or a photo was recorded) meanwhile
        self._release = redis.register_script(RELEASE)
        self._record = redis.register_script(_RECORD)
        self._end = redis.register_script(_END)

    def _key(self, request_id: str) -> str:
        return PREVIEW_MESSAGE_KEY.format(platform=self.platform, request_id=request_id)

    async def claim(self, request_id: str) -> bool:
        """Take the right to start the request's photo: True for one caller only, and never once it ended."""
        return bool(await self.redis.set(self._key(request_id), CLAIMED, nx=True, ex=self.ttl_s))

    async def release(self, request_id: str) -> None:
        """Give a claim back (the photo could not be sent): a later preview may try again."""
        await self._release(keys=[self._key(request_id)], args=[CLAIMED])

    async def record(self, request_id: str, message_id: str) -> bool:
        """The claimed photo was sent as `message_id`. False when the request ended meanwhile: then the caller
        removes the photo it sent, as nobody else knows of it."""
        return bool(await self._record(keys=[self._key(request_id)], args=[CLAIMED, message_id, self.ttl_s]))

    async def shown(self, request_id: str) -> str | None:
        """The id of the photo showing the request's progress, or None (none, being sent, or ended)."""
        raw = await self.redis.get(self._key(request_id))
        value = raw.decode() if isinstance(raw, bytes) else raw
        return value if value not in (None, CLAIMED, ENDED) else None

    async def end(self, request_id: str) -> str | None:
        """The request has ended: no photo may be started for it any more. Returns the id of the photo that
        shows its progress (it stays recorded until `forget`, so a retried delivery finds it again), or None."""
        value = await self._end(keys=[self._key(request_id)], args=[CLAIMED, ENDED, self.ended_ttl_s])
        if value is None:
            return None
        value = value.decode() if isinstance(value, bytes) else str(value)
        return value if value != ENDED else None

    async def forget(self, request_id: str) -> None:
        """The photo is removed (or can't be): the request stays ended, with no photo."""
        await self.redis.set(self._key(request_id), ENDED, ex=self.ended_ttl_s)
