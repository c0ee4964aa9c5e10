"""The operations endpoints every long-running process serves: /metrics, /healthz and /readyz.

/healthz answers 200 while the process's event loop runs. /readyz runs the process's readiness checks (Redis
reachable, models loaded, gateway connected…) and answers 200 only when all pass, 503 with the failing ones
otherwise. /metrics is Prometheus' text format from core.metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from core import metrics
from core.constants import QUEUE_CLOUD, QUEUE_GPU
from core.jobs.workers import WorkerRegistry
from core.settings import Settings

log = logging.getLogger(__name__)

ROUTES = ("/metrics", "/healthz", "/readyz")
QUEUES = (QUEUE_GPU, QUEUE_CLOUD)
CHECK_TIMEOUT_S = 2.0

# A readiness check: returns None when ready, else a short reason ("redis unreachable").
ReadinessCheck = Callable[[], Awaitable[str | None]]
# Sets gauges that are read from elsewhere (queue depth from Redis) just before /metrics answers.
Sampler = Callable[[], Awaitable[None]]


class HealthServer:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.checks: dict[str, ReadinessCheck] = {}
        self.samplers: list[Sampler] = []
        self._runner: web.AppRunner | None = None

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self.checks[name] = check

    def add_sampler(self, sampler: Sampler) -> None:
        self.samplers.append(sampler)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])  # the port bound (a free one when 0 was asked for)
        log.info("health and metrics on http://%s:%d (%s)", self.host, self.port, ", ".join(ROUTES))

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def failing(self) -> dict[str, str]:
        """The checks that fail now, with their reasons."""
        names = list(self.checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(self.checks[name](), CHECK_TIMEOUT_S) for name in names),
            return_exceptions=True,
        )
        failing = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                failing[name] = f"check failed: {type(result).__name__}"
            elif result is not None:
                failing[name] = result
        return failing

    async def _metrics(self, request: web.Request) -> web.Response:
        for sampler in self.samplers:  # a sampler that fails leaves its gauges at their last value
            try:
                await asyncio.wait_for(sampler(), CHECK_TIMEOUT_S)
            except Exception as exc:
                log.debug("a metrics sampler failed (%s: %s)", type(exc).__name__, exc)
        body = await asyncio.to_thread(generate_latest)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, request: web.Request) -> web.Response:
        failing = await self.failing()
        if failing:
            return web.json_response({"status": "not ready", "failing": failing}, status=503)
        return web.json_response({"status": "ready", "checks": sorted(self.checks)})


def redis_check(redis: object) -> ReadinessCheck:
    """Ready while Redis answers PING."""

    async def check() -> str | None:
        try:
            await redis.ping()  # type: ignore[attr-defined]
        except Exception as exc:
            return f"redis unreachable ({type(exc).__name__})"
        return None

    return check


def queue_depth(redis: object) -> Sampler:
    """imagebot_queue_depth{queue}: the jobs on each queue (waiting or running), read at each scrape."""

    async def sample() -> None:
        for queue in QUEUES:
            metrics.QUEUE_DEPTH.labels(queue=queue).set(await redis.zcard(queue))  # type: ignore[attr-defined]

    return sample


def workers_check(redis: Redis, worker_ids: Collection[str]) -> ReadinessCheck:
    """Ready while every worker of this process announces itself: Redis reached and its models loaded (a worker
    beats only then), and not draining (a draining worker leaves the list)."""

    async def check() -> str | None:
        alive = {worker.worker_id for worker in await WorkerRegistry(redis).alive()}
        missing = sorted(set(worker_ids) - alive)
        return f"not serving yet: {', '.join(missing)}" if missing else None

    return check


@asynccontextmanager
async def health_endpoints(
    settings: Settings, checks: dict[str, ReadinessCheck], samplers: Collection[Sampler] = ()
) -> AsyncIterator[HealthServer | None]:
    """Serve /metrics, /healthz and /readyz while the block runs, when IMAGEBOT_OPS__HEALTH_PORT is set."""
    if settings.ops.health_port is None:
        yield None
        return
    server = HealthServer(settings.ops.health_host, settings.ops.health_port)
    for name, check in checks.items():
        server.add_check(name, check)
    for sampler in samplers:
        server.add_sampler(sampler)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
