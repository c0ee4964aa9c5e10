"""Where a queued job stands: its place among the jobs not yet started, and about how long until its result.

Work is counted in pixel-steps (images × width × height × steps, in millions), which is what a render costs;
a job of four 1024² images at 30 steps is not "one job" like a 64² sketch. Each finished job leaves a sample
of its wall time (start to end) per unit of work, and the estimate takes the median of the recent samples, so
a few slow or cold jobs do not swing it. Under load a job's wall time includes waiting for its worker's device
behind the worker's other jobs, so the work ahead drains at (the live workers' max_jobs summed) / (seconds per
unit) — Little's law — and the job itself then takes its own wall time:

    eta = (work waiting ahead + half the work running ahead) × seconds_per_unit / slots + own work × seconds_per_unit

Measured in tests/core/jobs/test_estimate.py: within a factor of 2 of the real wait. It runs low (by up to
max_jobs×) when the recent samples came from an idle queue and a burst then arrives, and high when jobs ahead
are cancelled.
"""

from __future__ import annotations

import json
import statistics
from collections import OrderedDict
from dataclasses import dataclass

from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from core import constants as c
from core.keys import REQUEST_KEY, WORK_TIMES_KEY
from core.models.request import GenerationRequest

# The nearest jobs ahead whose requests are read; beyond them their average work is assumed. Running jobs sit at
# the head of the queue (workers take the lowest scores, and every new tag lies past the clock, which is the
# score of the last job started), so these are also the ones checked for running. Reading every job ahead made
# each submission O(queue): 500 at once took seconds.
AHEAD_READ = 48
UNITS_KEPT = 4096  # requests whose work one estimator keeps in memory (a float each)

# KEYS: the queue, the job's in-progress key, the queue's work times. ARGV: job id, how many ahead to read, arq's
# in-progress prefix. Returns {} when the job is not waiting (gone, or running), else {rank, {work times},
# id, running, id, running, ...} for the nearest ARGV[2] jobs ahead.
_AHEAD = """
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank or redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local out = {rank, redis.call('LRANGE', KEYS[3], 0, -1)}
if rank == 0 then return out end
local ahead = redis.call('ZRANGE', KEYS[1], 0, math.min(rank, tonumber(ARGV[2])) - 1)
for _, id in ipairs(ahead) do
  table.insert(out, id)
  table.insert(out, redis.call('EXISTS', ARGV[3] .. id))
end
return out
"""
CLOUD_SUFFIX = ":cloud"  # a request handed to OpenAI is queued again under request_id + this


@dataclass(frozen=True)
class Standing:
    position: int | None  # 1-based among the jobs not yet started; None when it runs or is gone
    eta_s: float | None  # seconds until the result, None while nothing has been measured


def work_units(width: int, height: int, steps: int, images: int) -> float:
    """A render's cost in millions of pixel-steps."""
    return images * width * height * max(1, steps) / 1e6


def request_units(request: GenerationRequest) -> float:
    return work_units(request.width, request.height, request.steps, request.n)


def _stored_units(raw: bytes | None) -> float | None:
    """The work of a stored request, read without validating the whole model (hundreds per estimate)."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return work_units(int(data["width"]), int(data["height"]), int(data["steps"]), len(data["seeds"]))
    except (ValueError, KeyError, TypeError):
        return None


class QueueEstimator:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._ahead = redis.register_script(_AHEAD)
        # The work of requests already read: a request never changes, and a burst of submissions all read the
        # same jobs at the head of the queue (a gone request is not kept: it may be read again)
        self._units: OrderedDict[str, float] = OrderedDict()

    def _remember_units(self, request_id: str, units: float | None) -> None:
        if units is None:
            return
        self._units[request_id] = units
        if len(self._units) > UNITS_KEPT:
            self._units.popitem(last=False)

    async def record(self, queue: str, seconds: float, request: GenerationRequest) -> None:
        """A job of `request` took `seconds` from start to end on `queue`."""
        units = request_units(request)
        if units <= 0:
            return
        key = WORK_TIMES_KEY.format(queue=queue)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, f"{seconds / units:.6g}")
            pipe.ltrim(key, 0, c.WORK_TIMES_KEPT - 1)
            await pipe.execute()

    async def seconds_per_unit(self, queue: str) -> float | None:
        """The median wall time per unit of work of the recent jobs on `queue`; None before the first."""
        raw: list[bytes] = await self.redis.lrange(WORK_TIMES_KEY.format(queue=queue), 0, -1)  # type: ignore[misc]
        samples = [float(value) for value in raw]
        return statistics.median(samples) if samples else None

    async def standing(
        self, job_id: str, queue: str, *, slots: int, own_units: float | None = None
    ) -> Standing:
        """Where `job_id` stands on `queue`, served by `slots` jobs at once (the live workers' max_jobs).

        At most two round trips whatever the queue's length: one script for the rank, the recent timings and
        which of the nearest jobs ahead are running, then those of their requests this estimator has not read
        (in a burst, the same jobs at the head of the queue: read once)."""
        found = await self._ahead(
            keys=[queue, in_progress_key_prefix + job_id, WORK_TIMES_KEY.format(queue=queue)],
            args=[job_id, AHEAD_READ, in_progress_key_prefix],
        )
        if not found:
            return Standing(None, None)
        rank = int(found[0])
        samples = [float(value) for value in found[1]]
        ahead = [value.decode() for value in found[2::2]]
        running = [bool(int(flag)) for flag in found[3::2]]
        position = rank - sum(running) + 1
        if not samples:
            return Standing(position, None)
        per_unit = statistics.median(samples)
        ids = [other.removesuffix(CLOUD_SUFFIX) for other in ahead]
        unread = [request_id for request_id in ids if request_id not in self._units]
        if unread:
            requests = await self.redis.mget([REQUEST_KEY.format(request_id=i) for i in unread])
            for request_id, raw in zip(unread, requests, strict=True):
                if request_id not in self._units:  # a concurrent submission may have read it meanwhile
                    self._remember_units(request_id, _stored_units(raw))
        units = [self._units.get(request_id) for request_id in ids]
        known = [unit for unit in units if unit is not None]
        typical = statistics.fmean(known) if known else (own_units or 0.0)
        waiting = running_work = 0.0
        for unit, is_running in zip(units, running, strict=True):
            if is_running:
                running_work += unit if unit is not None else typical
            else:
                waiting += unit if unit is not None else typical
        waiting += (rank - len(ahead)) * typical  # jobs ahead beyond those read
        own = own_units if own_units is not None else typical
        eta = (waiting + running_work / 2) * per_unit / max(1, slots) + own * per_unit
        return Standing(position, round(eta, 1))
