"""Tell the routers this worker is alive, which queue and models it serves (every configured model, warm or evicted);
hold its jobs' leases.

arq marks a running job with an in-progress key and retries the job once that key expires. A worker that is
killed cannot clean up, so the key's lifetime is how long its job waits: arq makes it the job timeout + 10 s
(over four minutes with our GPU timeout). Here it is a short lease instead, three heartbeats long, which the
heartbeat renews for every job still running: a killed worker's jobs go back to the queue within one lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable

from arq.constants import in_progress_key_prefix

from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LEASE_BEATS = 3  # a lease outlives two missed heartbeats


def default_worker_id(queue: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{queue.rsplit(':', 1)[-1]}"


def lease_s(interval_s: float) -> float:
    """How long a running job stays claimed without a heartbeat renewing it."""
    return LEASE_BEATS * interval_s


def _nothing() -> Iterable[str]:
    return ()


class Heartbeat:
    def __init__(
        self,
        registry: WorkerRegistry,
        info: WorkerInfo,
        interval_s: float,
        running: Callable[[], Iterable[str]] = _nothing,
    ) -> None:
        self.registry = registry
        self.info = info
        self.interval_s = interval_s
        self.running = running  # the arq job ids this worker is running now
        self.lease_ms = int(lease_s(interval_s) * 1000)
        self.jobs_done = 0
        self.announced = False
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.info = WorkerInfo(**{**self.info.__dict__, "started_at": time.time()})
        self.announced = True
        await self.registry.beat(self.info)  # visible before the first job can be routed here
        self._task = asyncio.create_task(self._loop(), name=f"heartbeat {self.info.worker_id}")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.beat()
            except Exception as exc:  # a Redis blip must not kill the worker; the TTLs cover a missed beat
                log.log(
                    logging.DEBUG if self._failing else logging.WARNING,
                    "heartbeat for %s failed (%s: %s)",
                    self.info.worker_id,
                    type(exc).__name__,
                    exc,
                )
                self._failing = True
            else:
                if self._failing:
                    log.info("heartbeat for %s is back", self.info.worker_id)
                self._failing = False

    async def beat(self) -> None:
        """Renew the running jobs' leases, and announce the worker unless it has withdrawn."""
        jobs = list(self.running())
        if jobs:
            async with self.registry.redis.pipeline(transaction=False) as pipe:
                for job_id in jobs:  # PEXPIRE leaves a finished job's deleted key deleted
                    pipe.pexpire(in_progress_key_prefix + job_id, self.lease_ms)
                await pipe.execute()
        if self.announced:
            await self.registry.beat(WorkerInfo(**{**self.info.__dict__, "jobs_done": self.jobs_done}))

    async def withdraw(self) -> None:
        """Stop announcing the worker (it takes no more jobs) while still holding its running jobs' leases."""
        self.announced = False
        await self.registry.remove(self.info.worker_id)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        self.announced = False
        try:
            await self.registry.remove(self.info.worker_id)
        except Exception as exc:  # Redis is down: the key's TTL removes it
            log.warning("heartbeat for %s not removed (%s: %s)", self.info.worker_id, type(exc).__name__, exc)
