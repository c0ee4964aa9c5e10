"""Worker heartbeats as typed JSON: what earlier versions wrote still reads, and garbage is ignored, not fatal."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from core import constants as c
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.keys import WORKER_KEY


async def test_heartbeats_round_trip_and_old_ones_still_read(redis: aioredis.Redis) -> None:
    registry = WorkerRegistry(redis)
    await registry.beat(WorkerInfo("gpu-1", c.QUEUE_GPU, ("tiny", "sdxl"), started_at=1.0, jobs_done=3))
    old = {"worker_id": "gpu-0", "queue": c.QUEUE_GPU, "models": ["tiny"], "started_at": 0.5, "jobs_done": 0,
           "seen_at": 2.0}  # fmt: skip
    await redis.set(WORKER_KEY.format(worker_id="gpu-0"), json.dumps(old), px=5000)
    await redis.set(
        WORKER_KEY.format(worker_id="odd"), json.dumps({"worker_id": "odd", "mood": "?"}), px=5000
    )

    alive = await registry.alive()

    assert [(w.worker_id, w.models, w.jobs_done) for w in alive] == [
        ("gpu-0", ("tiny",), 0),
        ("gpu-1", ("tiny", "sdxl"), 3),
    ]
    assert alive[1].seen_at > 1.0  # stamped by beat()
    assert [w.worker_id for w in await registry.serving(c.QUEUE_GPU, "sdxl")] == ["gpu-1"]
    assert 0 < await redis.pttl(WORKER_KEY.format(worker_id="gpu-1")) <= 15_000
