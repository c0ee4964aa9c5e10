"""The job queue over arq: the request is stored as JSON under its id, and the queue carries only the id.

The request id is also the arq job id, so a double-clicked button or a redelivered command is queued once.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms

from core import constants as c
from core.errors import NotFound
from core.jobs.estimate import CLOUD_SUFFIX, QueueEstimator, Standing, request_units
from core.keys import (
    CANCELLED_KEY,
    DURATIONS_KEY,
    RECENT_KEY,
    REQUEST_KEY,
    REQUEST_TTL_S,
    USER_REQUESTS_KEY,
)
from core.models.request import GenerationRequest

log = logging.getLogger(__name__)

JOB_EXPIRES_S = 7 * 24 * 3600  # arq drops a job not started within this; the worker reports stale ones sooner

# Remove a job that has not started yet. Returns 1 when removed, 0 when it is running, -1 when it is unknown.
_CANCEL_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
if removed == 0 then return -1 end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[4], '1', 'EX', ARGV[2])
return 1
"""

# KEYS: the owner's latest ids, every id of theirs with its time. ARGV: request id, last index kept, TTL (s),
# now, the oldest time kept. One step, so concurrent submissions pipeline it (core/jobs/pipelining.py).
_REMEMBER_SCRIPT = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[3])
"""


@dataclass(frozen=True)
class Submission:
    request_id: str
    queue: str | None  # None when served from the result cache
    position: int | None  # 1-based place among the jobs not yet started, None when not waiting
    eta_s: float | None  # seconds until the result, from the work ahead (core.jobs.estimate)
    duplicate: bool = False  # the same request id was already queued or done
    cached: bool = False
    notes: tuple[str, ...] = ()  # grammar notes to show the user (snapped sizes…)


def cloud_job_id(request_id: str) -> str:
    """The job id of a request handed from a local worker to OpenAI (its first job id is still taken)."""
    return f"{request_id}{CLOUD_SUFFIX}"


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # removed before it started
    RUNNING = "running"  # a worker has it: left to finish
    UNKNOWN = "unknown"  # not on this queue (never queued, already done, or on another queue)


class JobQueue:
    def __init__(self, redis: ArqRedis, ttl_s: int = REQUEST_TTL_S) -> None:
        """`ttl_s`: how long a request is kept (settings.retention.requests_days)."""
        self.redis = redis
        self.ttl_s = ttl_s
        self._cancel = redis.register_script(_CANCEL_SCRIPT)
        self._remember = redis.register_script(_REMEMBER_SCRIPT)
        self.estimator = QueueEstimator(redis)

    async def store(self, request: GenerationRequest) -> None:
        key = REQUEST_KEY.format(request_id=request.request_id)
        await self.redis.set(key, request.to_json(), ex=self.ttl_s, nx=True)

    async def load(self, request_id: str) -> GenerationRequest:
        raw = await self.redis.get(REQUEST_KEY.format(request_id=request_id))
        if raw is None:
            raise NotFound("That request is unknown or too old; please start a new one with /imagine.")
        return GenerationRequest.from_json(raw)

    async def known(self, job_id: str) -> bool:
        """Whether arq already holds this job (queued, running, or finished within keep_result)."""
        return bool(await self.redis.exists(job_key_prefix + job_id, result_key_prefix + job_id))

    async def enqueue(
        self, request: GenerationRequest, queue: str, score: float, job_id: str | None = None
    ) -> bool:
        """Store the request and queue its id at `score` (core.jobs.fairness). False when the job already existed."""
        await self.store(request)
        queued = await enqueue_scored(self.redis, c.JOB_GENERATE, request.request_id, queue, score, job_id)
        if not queued:
            log.info("request %s already queued or done; not queued again", request.request_id)
        return queued

    async def remember(self, owner: str, request_id: str) -> None:
        """Keep a user's latest request ids, for /cancel and the moderators' usage view, and every one of them
        within the retention, for /forget."""
        now = time.time()
        await self._remember(
            keys=[RECENT_KEY.format(owner=owner), USER_REQUESTS_KEY.format(owner=owner)],
            args=[request_id, c.RECENT_KEPT - 1, self.ttl_s, repr(now), repr(now - self.ttl_s)],
        )

    async def every_request(self, owner: str) -> list[str]:
        """Every request id of a user still kept (oldest first)."""
        raw: list[bytes] = await self.redis.zrange(USER_REQUESTS_KEY.format(owner=owner), 0, -1)
        return [value.decode() for value in raw]

    async def mark_cancelled(self, request_id: str) -> None:
        """Cancel a request whatever its state: a worker drops it before it starts, and one rendering it
        publishes no images (worker/jobs.py)."""
        await self.redis.set(CANCELLED_KEY.format(request_id=request_id), "1", ex=self.ttl_s)

    async def recent(self, owner: str, count: int = 10) -> list[str]:
        raw: list[bytes] = await self.redis.lrange(RECENT_KEY.format(owner=owner), 0, count - 1)  # type: ignore[misc]
        return [value.decode() for value in raw]

    async def position(self, job_id: str, queue: str) -> int | None:
        """1-based place among the jobs on `queue` not yet started (None when running or gone)."""
        return (await self.estimator.standing(job_id, queue, slots=1)).position

    async def standing(
        self, job_id: str, queue: str, slots: int, request: GenerationRequest | None = None
    ) -> Standing:
        """Its position, and the estimated seconds until its result with `slots` jobs served at once."""
        own = request_units(request) if request is not None else None
        return await self.estimator.standing(job_id, queue, slots=slots, own_units=own)

    async def pending(self, job_id: str) -> bool:
        """Whether the job is queued or running (arq drops its job key when it ends)."""
        return bool(await self.redis.exists(job_key_prefix + job_id))

    async def depth(self, queue: str) -> int:
        return int(await self.redis.zcard(queue))

    async def record_duration(
        self, queue: str, seconds: float, request: GenerationRequest | None = None
    ) -> None:
        """A job ended after `seconds` (start to end); with its request, it also teaches the wait estimate."""
        key = DURATIONS_KEY.format(queue=queue)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, f"{seconds:.3f}")
            pipe.ltrim(key, 0, c.DURATIONS_KEPT - 1)
            await pipe.execute()
        if request is not None:
            await self.estimator.record(queue, seconds, request)

    async def typical_duration(self, queue: str) -> float | None:
        """The median wall time of the recent jobs on `queue`, whatever their size (for operators)."""
        raw: list[bytes] = await self.redis.lrange(DURATIONS_KEY.format(queue=queue), 0, -1)  # type: ignore[misc]
        if not raw:
            return None
        return statistics.median(float(value) for value in raw)

    async def cancel(self, job_id: str, queue: str, request_id: str | None = None) -> CancelOutcome:
        """Remove a job that has not started; running jobs are left to finish."""
        result = await self._cancel(
            keys=[
                in_progress_key_prefix + job_id,
                queue,
                job_key_prefix + job_id,
                CANCELLED_KEY.format(request_id=request_id or job_id),
            ],
            args=[job_id, self.ttl_s],
        )
        return {1: CancelOutcome.CANCELLED, 0: CancelOutcome.RUNNING}.get(int(result), CancelOutcome.UNKNOWN)

    async def was_cancelled(self, request_id: str) -> bool:
        return bool(await self.redis.exists(CANCELLED_KEY.format(request_id=request_id)))


# KEYS: the job's key, its result's key, the queue. ARGV: job id, score, expiry (ms), the job as arq stores it.
# What arq's enqueue_job does with WATCH and MULTI over three round trips on a connection of its own, in one
# step that concurrent submissions can pipeline (core/jobs/pipelining.py): queue once, unless arq holds the job.
_ENQUEUE_SCRIPT = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""


async def enqueue_scored(
    redis: ArqRedis, job: str, request_id: str, queue: str, score: float, job_id: str | None = None
) -> bool:
    """Queue job `job` for `request_id` at fair-queue `score`; False when arq already holds that job id.

    The job is written exactly as arq's enqueue_job writes it (arq's own serializer, our JSON), due at once:
    virtual tags always lie in the past."""
    job_id = job_id or request_id
    payload = serialize_job(job, (request_id,), {}, None, timestamp_ms(), serializer=redis.job_serializer)
    queued = await redis.register_script(_ENQUEUE_SCRIPT)(  # AutoPipelined keeps one per text
        keys=[job_key_prefix + job_id, result_key_prefix + job_id, queue],
        args=[
            job_id,
            to_unix_ms(datetime.fromtimestamp(score / 1000, tz=UTC)),
            JOB_EXPIRES_S * 1000,
            payload,
        ],
    )
    return bool(queued)
