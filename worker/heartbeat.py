"""Tell the routers this worker is alive, which queue it serves and which models are warm."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

from core.jobs.workers import WorkerInfo, WorkerRegistry

log = logging.getLogger(__name__)


def default_worker_id(queue: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{queue.rsplit(':', 1)[-1]}"


class Heartbeat:
    def __init__(self, registry: WorkerRegistry, info: WorkerInfo, interval_s: float) -> None:
        self.registry = registry
        self.info = info
        self.interval_s = interval_s
        self.jobs_done = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.info = WorkerInfo(**{**self.info.__dict__, "started_at": time.time()})
        await self.registry.beat(self.info)  # visible before the first job can be routed here
        self._task = asyncio.create_task(self._loop(), name=f"heartbeat {self.info.worker_id}")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.registry.beat(WorkerInfo(**{**self.info.__dict__, "jobs_done": self.jobs_done}))
            except Exception:  # a Redis blip must not kill the worker; the TTL covers a missed beat
                log.warning("heartbeat for %s failed", self.info.worker_id, exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.registry.remove(self.info.worker_id)
