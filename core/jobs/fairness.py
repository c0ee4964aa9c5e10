"""Fair queueing: jobs are ordered by start-time fair queueing tags, not by arrival.

Each user has a virtual finish tag; a new job starts at max(the queue's virtual clock, the user's last finish) and
costs images × 1000 / tier weight. arq takes the lowest score first, so one user's twenty 4-image batches are
interleaved with everyone else's jobs instead of running first, and a heavier tier gets a proportionally larger
share. The tags live in their own virtual time far below the wall clock, so arq always sees them as due; the
clock advances to the tag of each job a worker starts.

Equal tags are common (everyone idle starts at the clock: a hundred users asking at once all tie), and a sorted
set orders equal scores by member, i.e. by random job id, so a later job would jump ahead of an earlier one. So
every score is unique and whole (arq keeps integer milliseconds): a job whose tag is taken gets the next free
one, after every job that came before it with the same tag. Ties are thus broken by arrival, each step costing
a thousandth of an image of virtual time, and a job's rank is the order workers will take it in. A newcomer
may still be placed ahead of a flooder's later jobs — that is the point.
"""

from __future__ import annotations

from redis.asyncio import Redis

from core.keys import FAIR_FINISH_KEY, FAIR_FINISH_TTL_S, FAIR_TAKEN_KEY, FAIR_VCLOCK_KEY

COST_PER_IMAGE = 1000.0  # virtual ms per image at weight 1
# Scores at or above this are wall-clock times (arq's own retries, deferred jobs), not virtual tags: they must
# never move the virtual clock, or every later tag would lie in the future and wait for the wall clock.
VIRTUAL_LIMIT = 1e12

# KEYS: vclock, the user's finish tag, the taken scores. ARGV: cost, the TTL of the tag and of the taken set.
# Returns the job's score: its start tag, or the first free whole score after it. Taken scores are distinct whole
# numbers, so [score, score + n - 1] is full exactly when it holds n of them: the length doubles until a range
# has a gap, then halves into it. O(log² n) counts, where reading the taken scores one by one made a burst of k
# newcomers, all starting at the clock, cost k²/2 steps. Scores below the clock are never asked for again, so
# they are dropped.
_TAG = """
local vclock = tonumber(redis.call('GET', KEYS[1]) or '1')
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local score = math.ceil(math.max(vclock, last))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. vclock)
local function full(n) return redis.call('ZCOUNT', KEYS[3], score, score + n - 1) == n end
if full(1) then
  local n = 2
  while full(n) do n = n * 2 end
  local lo, hi = n / 2, n  -- the first lo scores are taken, the first hi are not all taken
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    if full(mid) then lo = mid else hi = mid end
  end
  score = score + lo
end
redis.call('ZADD', KEYS[3], score, string.format('%d', score))
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('SET', KEYS[2], tostring(score + tonumber(ARGV[1])), 'EX', ARGV[2])  -- idle users start afresh
return string.format('%d', score)
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
        keys = [
            FAIR_VCLOCK_KEY.format(queue=queue),
            FAIR_FINISH_KEY.format(queue=queue, owner=owner),
            FAIR_TAKEN_KEY.format(queue=queue),
        ]
        return float(await self._tag(keys=keys, args=[f"{cost:.3f}", FAIR_FINISH_TTL_S]))

    async def started(self, queue: str, score: float) -> None:
        """A worker took the job with this score: virtual time moves to it."""
        if score >= VIRTUAL_LIMIT:
            return
        await self._advance(keys=[FAIR_VCLOCK_KEY.format(queue=queue)], args=[f"{score:.3f}"])
