"""Worker heartbeats as typed JSON: what earlier versions wrote still reads, and garbage is ignored, not fatal."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis

from core import constants as c
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import WORKER_KEY, WORKERS_INDEX_KEY


async def test_heartbeats_round_trip_and_old_ones_still_read(redis: aioredis.Redis) -> None:
    registry = WorkerRegistry(redis)
    await registry.beat(WorkerInfo("gpu-1", c.QUEUE_GPU, ("tiny", "sdxl"), started_at=1.0, jobs_done=3))
    old = {"worker_id": "gpu-0", "queue": c.QUEUE_GPU, "models": ["tiny"], "started_at": 0.5, "jobs_done": 0,
           "seen_at": 2.0}  # fmt: skip
    await redis.set(WORKER_KEY.format(worker_id="gpu-0"), json.dumps(old), px=5000)
    await redis.set(
        WORKER_KEY.format(worker_id="odd"), json.dumps({"worker_id": "odd", "mood": "?"}), px=5000
    )
    later = int(time.time() * 1000) + 5000
    await redis.zadd(WORKERS_INDEX_KEY, {"gpu-0": later, "odd": later})  # listed as a beat lists them

    alive = await registry.alive()

    assert [(w.worker_id, w.models, w.jobs_done) for w in alive] == [
        ("gpu-0", ("tiny",), 0),
        ("gpu-1", ("tiny", "sdxl"), 3),
    ]
    assert alive[1].seen_at > 1.0  # stamped by beat()
    assert [w.worker_id for w in await registry.serving(c.QUEUE_GPU, "sdxl")] == ["gpu-1"]
    assert 0 < await redis.pttl(WORKER_KEY.format(worker_id="gpu-1")) <= 15_000


async def test_a_worker_is_listed_until_its_heartbeat_lapses_or_it_leaves(redis: aioredis.Redis) -> None:
    registry = WorkerRegistry(redis, ttl_s=0.3)
    await registry.beat(WorkerInfo("gpu-1", c.QUEUE_GPU, ("tiny",), started_at=1.0))
    await registry.beat(WorkerInfo("gpu-2", c.QUEUE_GPU, ("tiny",), started_at=1.0))
    await redis.set("imagebot:unrelated", "x")  # the keyspace is never scanned for heartbeats

    listed = await asyncio.gather(*(registry.alive() for _ in range(50)))  # concurrent callers share a read

    assert all([w.worker_id for w in workers] == ["gpu-1", "gpu-2"] for workers in listed)
    await registry.remove("gpu-1")
    assert [w.worker_id for w in await registry.alive()] == ["gpu-2"]
    await asyncio.sleep(0.4)
    assert await registry.alive() == []
    await registry.beat(WorkerInfo("gpu-3", c.QUEUE_GPU, ("tiny",), started_at=2.0))
    assert await redis.zrange(WORKERS_INDEX_KEY, 0, -1) == [b"gpu-3"]  # the lapsed ones were dropped
    assert 0 < await redis.pttl(WORKERS_INDEX_KEY) <= 300
