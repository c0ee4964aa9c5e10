"""Presses of a result button: a double tap queues one job, a deliberate second press queues new work.

A press by one user of one button stands for the same request as that user's previous press of it when it
comes within DOUBLE_TAP_S of it, or while the job that press queued is still waiting or running. Once that job
has ended, a press is new work (a second 🔄 after the first reroll arrived draws again). It is a sliding window
kept in Redis, per (user, button): fixed time buckets queued a double click twice when it straddled their edge,
and refused a deliberate reroll until the bucket ran out. Two taps racing each other still queue once: the
claim is SET NX, and taking over a finished press is a compare-and-set.
"""

from __future__ import annotations

from redis.asyncio import Redis

from core import constants as c
from core.claims import RELEASE
from core.jobs.queue import JobQueue, cloud_job_id
from core.keys import PRESS_KEY

DOUBLE_TAP_S = 2.0  # presses closer than this are one press, whatever happened in between
PRESS_TTL_S = c.STALE_JOB_S  # a job that waited longer than this is dropped, so its press is over by then

# KEYS: the press key. ARGV: the value seen, the new value, ttl. Replace only what was seen.
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return ARGV[2]
end
return redis.call('GET', KEYS[1]) or false
"""


def _value(request_id: str, now: float) -> str:
    return f"{request_id} {now:.3f}"


def _parse(value: bytes | str) -> tuple[str, float]:
    text = value.decode() if isinstance(value, bytes) else value
    request_id, _, at = text.partition(" ")
    try:
        return request_id, float(at)
    except ValueError:
        return request_id, 0.0


class PressWindow:
    def __init__(self, redis: Redis, queue: JobQueue) -> None:
        self.redis = redis
        self.queue = queue
        self._take_over = redis.register_script(_TAKE_OVER)
        self._release = redis.register_script(RELEASE)  # only a press nobody replaced since

    async def claim(self, owner: str, button_id: str, request_id: str, now: float) -> str:
        """The request this press stands for: `request_id` when it is new work, else the earlier press's."""
        key = PRESS_KEY.format(owner=owner, button=button_id)
        mine = _value(request_id, now)
        for _ in range(3):  # again only when the earlier press's key expired under our feet
            if await self.redis.set(key, mine, nx=True, ex=PRESS_TTL_S):
                return request_id
            seen = await self.redis.get(key)
            if seen is None:
                continue
            earlier, at = _parse(seen)
            if abs(now - at) < DOUBLE_TAP_S or await self._pending(earlier):
                return earlier
            current = await self._take_over(keys=[key], args=[seen, mine, PRESS_TTL_S])
            if current is not None:  # ours, or the press that beat us to it
                return _parse(current)[0]
        return request_id

    async def release(self, owner: str, button_id: str, request_id: str, now: float) -> None:
        """This press queued nothing (it was refused): the next press is not a repeat of it."""
        key = PRESS_KEY.format(owner=owner, button=button_id)
        await self._release(keys=[key], args=[_value(request_id, now)])

    async def _pending(self, request_id: str) -> bool:
        return await self.queue.pending(request_id) or await self.queue.pending(cloud_job_id(request_id))
