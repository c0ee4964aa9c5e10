"""Fair queueing: jobs are ordered by start-time fair queueing tags, not by arrival.

Each user has a virtual finish tag; a new job starts at max(the queue's virtual clock, the user's last finish) and
costs images × 1000 / tier weight. arq takes the lowest score first, so one user's twenty 4-image batches are
interleaved with everyone else's jobs instead of running first, and a heavier tier gets a proportionally larger
share. The tags live in their own virtual time far below the wall clock, so arq always sees them as due; the
clock advances to the tag of each job a worker starts. A job's queue position (its rank) stays truthful, though
a newcomer may still be placed ahead of a flooder's later jobs — that is the point.
"""

from __future__ import annotations

from redis.asyncio import Redis

from core.keys import FAIR_FINISH_KEY, FAIR_FINISH_TTL_S, FAIR_VCLOCK_KEY

COST_PER_IMAGE = 1000.0  # virtual ms per image at weight 1
# Scores at or above this are wall-clock times (arq's own retries, deferred jobs), not virtual tags: they must
# never move the virtual clock, or every later tag would lie in the future and wait for the wall clock.
VIRTUAL_LIMIT = 1e12

# KEYS: vclock, the user's finish tag. ARGV: cost, the tag's TTL. Returns the job's start tag (its arq score).
_TAG = """
local vclock = tonumber(redis.call('GET', KEYS[1]) or '1')
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = math.max(vclock, last)
redis.call('SET', KEYS[2], tostring(start + tonumber(ARGV[1])), 'EX', ARGV[2])  -- idle users start afresh
return tostring(start)
"""

# KEYS: vclock. ARGV: started job's score. The clock only moves forward.
_ADVANCE = """
local now = tonumber(redis.call('GET', KEYS[1]) or '1')
if tonumber(ARGV[1]) > now then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


class FairScheduler:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._tag = redis.register_script(_TAG)
        self._advance = redis.register_script(_ADVANCE)

    async def score(self, queue: str, owner: str, images: int, weight: float) -> float:
        cost = images * COST_PER_IMAGE / max(weight, 0.01)
        keys = [FAIR_VCLOCK_KEY.format(queue=queue), FAIR_FINISH_KEY.format(queue=queue, owner=owner)]
        return float(await self._tag(keys=keys, args=[f"{cost:.3f}", FAIR_FINISH_TTL_S]))

    async def started(self, queue: str, score: float) -> None:
        """A worker took the job with this score: virtual time moves to it."""
        if score >= VIRTUAL_LIMIT:
            return
        await self._advance(keys=[FAIR_VCLOCK_KEY.format(queue=queue)], args=[f"{score:.3f}"])
