"""Worker heartbeats: which workers are alive, on which queue, with which models (warm, or evicted to stay within
the worker's memory budget: the next request loads it again).

Each worker refreshes a key with a short TTL, and its id in an index scored by when that lapses; a worker that
dies simply stops being listed. Routing uses this to
decide between the local GPU queue and the OpenAI fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass
from redis.asyncio import Redis

from core.keys import WORKER_HEARTBEAT_TTL_S, WORKER_KEY, WORKERS_INDEX_KEY

log = logging.getLogger(__name__)


@dataclass(frozen=True, config=ConfigDict(extra="ignore"))
class WorkerInfo:
    """A worker's heartbeat, stored as JSON under WORKER_KEY (a pydantic dataclass: built positionally too).

    Unknown fields are ignored: a newer worker may announce more than this process knows."""

    worker_id: str
    queue: str
    models: tuple[str, ...]
    started_at: float
    jobs_done: int = 0
    seen_at: float = 0.0
    max_jobs: int = 1  # jobs it runs at once (arq's max_jobs), for the queue's wait estimate


_WORKER_INFO: TypeAdapter[WorkerInfo] = TypeAdapter(WorkerInfo)

# KEYS: the index of workers. ARGV: the heartbeat key's prefix. Returns {ids, heartbeats}: one round trip.
_READ_ALIVE = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
if #ids == 0 then return {{}, {}} end
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. id end
return {ids, redis.call('MGET', unpack(keys))}
"""


class WorkerRegistry:
    def __init__(self, redis: Redis, ttl_s: float = WORKER_HEARTBEAT_TTL_S) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)
        self._reading: asyncio.Future[list[WorkerInfo]] | None = None
        self._read = redis.register_script(_READ_ALIVE)

    async def beat(self, info: WorkerInfo) -> None:
        now = time.time()
        payload = _WORKER_INFO.dump_json(replace(info, seen_at=now))
        lapses_ms = int(now * 1000) + self.ttl_ms
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(WORKER_KEY.format(worker_id=info.worker_id), payload, px=self.ttl_ms)
            pipe.zadd(WORKERS_INDEX_KEY, {info.worker_id: lapses_ms})
            pipe.zremrangebyscore(WORKERS_INDEX_KEY, "-inf", f"({int(now * 1000)}")
            pipe.pexpire(WORKERS_INDEX_KEY, self.ttl_ms)
            await pipe.execute()

    async def remove(self, worker_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(WORKER_KEY.format(worker_id=worker_id))
            pipe.zrem(WORKERS_INDEX_KEY, worker_id)
            await pipe.execute()

    async def alive(self) -> list[WorkerInfo]:
        """The workers whose heartbeat has not lapsed, by id. One round trip whatever the keyspace holds (the
        index and its heartbeats); concurrent callers share one read instead of each making their own."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read_alive())
        return list(await asyncio.shield(self._reading))

    async def _read_alive(self) -> list[WorkerInfo]:
        ids, beats = await self._read(keys=[WORKERS_INDEX_KEY], args=[WORKER_KEY.format(worker_id="")])
        workers = []
        for worker_id, raw in zip((raw.decode() for raw in ids), beats, strict=True):
            if (
                not raw
            ):  # lapsed since its last beat (Lua gives false for a missing key, which arrives as None)
                continue
            try:
                workers.append(_WORKER_INFO.validate_json(raw))
            except ValidationError:
                log.warning("heartbeat of %s is unreadable; ignored", worker_id)
        return sorted(workers, key=lambda worker: worker.worker_id)

    async def wait_until_serving(
        self, queue: str, timeout_s: float, running: asyncio.Future[Any] | None = None
    ) -> None:
        """Wait until a worker on `queue` has announced itself. When the worker's own task (`running`) ends first,
        its error (a model that could not be loaded…) is raised here instead of waiting out the timeout."""
        async with asyncio.timeout(timeout_s):
            while not await self.serving(queue):
                if running is not None and running.done():
                    running.result()
                    raise RuntimeError("the worker stopped before it was ready")
                await asyncio.sleep(0.02)

    async def serving(self, queue: str, model: str | None = None) -> list[WorkerInfo]:
        """Live workers on `queue` (that serve `model`, warm or not, when given)."""
        return [
            worker
            for worker in await self.alive()
            if worker.queue == queue and (model is None or model in worker.models)
        ]


def slots_on(workers: list[WorkerInfo], queue: str) -> int:
    """How many jobs `workers` run at once on `queue`, together (at least 1)."""
    return max(1, sum(max(1, worker.max_jobs) for worker in workers if worker.queue == queue))
