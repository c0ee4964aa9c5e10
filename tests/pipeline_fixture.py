"""A running pipeline for end-to-end tests: real Redis, the core service, and an in-process worker on `tiny`.

Use it from any test module with `from tests.pipeline_fixture import pipeline  # noqa: F401`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from cli.runtime import Runtime, open_runtime
from core import constants as c
from core.jobs.workers import WorkerRegistry
from core.settings import Settings


@dataclass
class Pipeline:
    runtime: Runtime
    workers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    async def start_worker(
        self, queue: str = c.QUEUE_GPU, settings: Settings | None = None
    ) -> asyncio.Task[None]:
        """Start a worker in this event loop and wait until its heartbeat says it is ready."""
        from worker.main import run_workers

        task = asyncio.create_task(run_workers(settings or self.settings, [queue]))
        self.workers.append(task)
        await WorkerRegistry(self.runtime.redis).wait_until_serving(queue, 120, task)
        return task

    async def stop_workers(self) -> None:
        for task in self.workers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.workers.clear()


@pytest.fixture
async def pipeline(settings: Settings, redis: object) -> AsyncIterator[Pipeline]:
    """The service over a flushed real Redis; call `await pipeline.start_worker()` to render."""
    async with open_runtime(settings) as runtime:
        running = Pipeline(runtime)
        try:
            yield running
        finally:
            await running.stop_workers()
