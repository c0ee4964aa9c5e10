"""`imagebot worker --processes N`: N worker processes on one machine, started, watched and stopped together.

On a CPU-only machine one worker keeps a core for the model and one for the image checks, and the checks leave
theirs idle most of the time. A process per core renders side by side and the checks fill the gaps:
bench.throughput (b3) measured 0.86–0.88× the plain diffusers loop on 2 cores, against 0.57–0.59× for one worker.

Each child is `imagebot worker` with the same settings (environment and .env), its own copy of the model (RAM),
and, unless the settings name them, `cores ÷ N` model threads and one post-processing thread. A named worker
(IMAGEBOT_WORKER__NAME) becomes NAME-1, NAME-2, …; the children listen on no fixed health port, the parent
serves /healthz and /readyz for all of them (cli/main.py). SIGTERM or SIGINT goes to every child, and each drains
as a lone worker does. A child that ends by itself (a crash, an OOM kill) stops the others, so the orchestrator
restarts the set; in burst mode each ends when the queue is empty. The exit code is the highest of theirs. If
the parent itself is killed outright, Linux sends each child a SIGTERM (PR_SET_PDEATHSIG): no orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from typing import Any

from core.settings import Settings

PR_SET_PDEATHSIG = 1  # prctl(2)


def child_environment(settings: Settings, index: int, count: int, cores: int) -> dict[str, str]:
    """The environment of child `index` (0-based) of `count`, on a machine with `cores` usable cores."""
    environment = dict(os.environ)
    worker = settings.worker
    if not worker.model_threads:
        environment["IMAGEBOT_WORKER__MODEL_THREADS"] = str(max(1, cores // count))
    if not worker.post_threads:
        environment["IMAGEBOT_WORKER__POST_THREADS"] = "1"
    if worker.name:
        environment["IMAGEBOT_WORKER__NAME"] = f"{worker.name}-{index + 1}"
    if settings.ops.health_port is not None:
        environment["IMAGEBOT_OPS__HEALTH_PORT"] = "0"  # any free port: the parent serves the fixed one
    return environment


def worker_ids(
    settings: Settings, children: list[asyncio.subprocess.Process], queues: list[str]
) -> list[str]:
    """The ids the children's workers announce (worker/heartbeat.py's, or the numbered names)."""
    if settings.worker.name:
        return [f"{settings.worker.name}-{index + 1}" for index in range(len(children))]
    host = socket.gethostname()
    return [f"{host}:{child.pid}:{queue.rsplit(':', 1)[-1]}" for child in children for queue in queues]


async def start(settings: Settings, count: int, queue: str, burst: bool) -> list[asyncio.subprocess.Process]:
    from worker.threads import usable_cores

    command = [sys.executable, "-m", "cli", "worker", "--queue", queue, *(["--burst"] if burst else [])]
    cores = usable_cores()
    return [
        await asyncio.create_subprocess_exec(
            *command, env=child_environment(settings, index, count, cores), preexec_fn=_die_with_parent
        )
        for index in range(count)
    ]


def _die_with_parent() -> None:
    """In the child before it starts (Linux): SIGTERM when the parent dies, so a parent killed outright (SIGKILL)
    leaves no orphan workers behind; each drains as on a deploy."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def supervise(children: list[asyncio.subprocess.Process], burst: bool) -> int:
    """Until the children end: on SIGTERM/SIGINT, or when one ends by itself (outside burst mode), the rest are
    told to stop. Returns the highest exit code; a child that is still running when this is cancelled is killed."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    waits = [asyncio.ensure_future(child.wait()) for child in children]
    stopping = asyncio.ensure_future(stop.wait())
    try:
        ends: list[asyncio.Future[Any]] = [asyncio.gather(*waits)] if burst else [*waits]
        await asyncio.wait([*ends, stopping], return_when=asyncio.FIRST_COMPLETED)
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*waits)
    finally:
        stopping.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
    return max((128 - code if code < 0 else code for code in codes), default=0)  # killed by N: 128 + N
