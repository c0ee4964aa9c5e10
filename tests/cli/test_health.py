"""/healthz, /readyz and /metrics as an orchestrator and Prometheus see them."""

from __future__ import annotations

import aiohttp
import redis.asyncio as aioredis

from cli.health import HealthServer, redis_check
from cli.redis_server import _free_port
from core import metrics


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_ready_only_while_every_check_passes(redis: aioredis.Redis) -> None:
    server = HealthServer("127.0.0.1", 0)
    server.add_check("redis", redis_check(redis))
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert (await get(f"{base}/healthz"))[0] == 200
        status, body = await get(f"{base}/readyz")
        assert status == 200 and "redis" in body
        dead = aioredis.Redis(host="127.0.0.1", port=_free_port(), socket_connect_timeout=0.2)
        server.add_check("other redis", redis_check(dead))
        status, body = await get(f"{base}/readyz")
        assert status == 503 and "redis unreachable" in body and "other redis" in body
        await dead.aclose()
    finally:
        await server.close()


async def test_metrics_are_served_in_prometheus_text_format() -> None:
    metrics.JOBS.labels(queue="imagebot:queue:gpu", outcome="done", reason="").inc()
    metrics.STAGE_SECONDS.labels(stage="model").observe(0.3)
    server = HealthServer("127.0.0.1", 0)
    await server.start()
    try:
        status, body = await get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        await server.close()
    assert status == 200
    assert 'imagebot_jobs_total{outcome="done",queue="imagebot:queue:gpu",reason=""}' in body
    assert 'imagebot_stage_seconds_bucket{le="0.5",stage="model"}' in body
