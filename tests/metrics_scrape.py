"""Read /metrics and /readyz over HTTP as Prometheus and an orchestrator do, for tests that watch numbers move.

async with served(add_check=…) as endpoint:
    before = await endpoint.metrics()
    …
    after = await endpoint.metrics()
    assert after.value("imagebot_refusals_total", kind="invalid_request") == before.value(…) + 1
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from cli.health import HealthServer


@dataclass(frozen=True)
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 for one not exported yet (a counter that never moved, a label never used)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class Endpoint:
    server: HealthServer

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.base + path) as response:
            return response.status, await response.text()

    async def readiness(self, status: int, within_s: float = 10) -> str:
        """/readyz's body once it answers `status` (200 ready, 503 not)."""
        async with asyncio.timeout(within_s):
            while True:
                got, body = await self.get("/readyz")
                if got == status:
                    return body
                await asyncio.sleep(0.05)

    async def metrics_when(self, settled: Callable[[Scrape], bool], within_s: float = 10) -> Scrape:
        """The first scrape for which `settled` holds (a worker counts a job just after it published it)."""
        async with asyncio.timeout(within_s):
            while True:
                scrape = await self.metrics()
                if settled(scrape):
                    return scrape
                await asyncio.sleep(0.05)

    async def metrics(self) -> Scrape:
        status, text = await self.get("/metrics")
        assert status == 200
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return Scrape(samples)


@asynccontextmanager
async def served() -> AsyncIterator[Endpoint]:
    """A HealthServer on a free loopback port: this process's /metrics, and /readyz with the checks added."""
    server = HealthServer("127.0.0.1", 0)
    await server.start()
    try:
        yield Endpoint(server)
    finally:
        await server.close()
