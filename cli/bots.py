"""`imagebot telegram|discord`: a front end over the core service, optionally with an in-process worker.

With `--with-worker` the bot takes no message before that worker serves: messages that waited while the bot was
down would otherwise be refused ("No image generator … is running") in the seconds the worker spends loading its
models. With local storage and no public base URL, the images are served over HTTP on 127.0.0.1 (LocalFileServer),
so results carry http:// links ("Full size") instead of file:// paths nobody can open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any

from cli.health import HealthServer, health_endpoints, queue_depth, redis_check
from cli.runtime import Runtime, open_runtime
from core.errors import StorageError
from core.jobs.workers import WorkerRegistry
from core.settings import Settings, updated
from core.storage.local import LocalFileServer
from core.tasks import cancel_and_wait, to_the_end

log = logging.getLogger(__name__)

WORKER_READY_TIMEOUT_S = 1800.0  # a first download of real weights can take many minutes


async def serve_local_images(settings: Settings, stack: AsyncExitStack) -> Settings:
    """The settings, with public_base_url pointing at a LocalFileServer (closed with the stack) when images are
    stored locally and nobody serves them yet. A busy port falls back to a free one, with a warning."""
    storage = settings.storage
    if storage.backend != "local" or storage.public_base_url:
        return settings
    storage.local_dir.mkdir(parents=True, exist_ok=True)
    server = LocalFileServer(storage.local_dir, port=storage.serve_port)
    try:
        base_url = await server.start()
    except StorageError as exc:
        if not storage.serve_port:
            raise
        log.warning("%s; serving images on a free port instead (links in older messages will not open)", exc)
        server = LocalFileServer(storage.local_dir)
        base_url = await server.start()
    stack.push_async_callback(server.close)
    return updated(settings, {"storage": {"public_base_url": base_url}})


def _front_end(
    platform: str, runtime: Runtime, sync: bool, health: HealthServer | None
) -> Coroutine[Any, Any, None]:
    add_check = health.add_check if health is not None else None
    if platform == "telegram":
        from bots.telegram import run_telegram_bot

        return run_telegram_bot(
            runtime.settings, runtime.service, runtime.redis, admin=runtime.admin, add_check=add_check
        )
    from bots.discord import run_discord_bot

    return run_discord_bot(
        runtime.settings,
        runtime.service,
        runtime.redis,
        sync=sync,
        admin=runtime.admin,
        add_check=add_check,
    )


async def start_worker(runtime: Runtime) -> asyncio.Future[None]:
    """Run a worker in this process and wait until it serves every queue it runs (its error, if it fails)."""
    from worker.main import queues_for, run_workers

    queues = queues_for(runtime.settings, "all")
    worker = asyncio.ensure_future(run_workers(runtime.settings, queues))
    log.info("waiting for the in-process worker to load its models before taking messages")
    registry = WorkerRegistry(runtime.redis)
    try:
        for queue in queues:
            await registry.wait_until_serving(queue, WORKER_READY_TIMEOUT_S, worker)
    except BaseException:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker
        raise
    log.info("the in-process worker serves %s; taking messages", ", ".join(queues))
    return worker


async def run_bot(platform: str, settings: Settings, *, sync: bool = False, with_worker: bool = False) -> int:
    """Run a front end (and, with `with_worker`, a worker) until it ends or SIGTERM stops it: then the bot stops
    taking messages, lets the delivery in hand finish (its grace period), and returns 0; a result not delivered
    yet stays pending on the stream for the next start, which delivers it once."""
    return await until_sigterm(_run_bot(platform, settings, sync=sync, with_worker=with_worker))


async def until_sigterm(run: Coroutine[Any, Any, int]) -> int:
    """Await `run`; SIGTERM cancels it (its cleanup runs: front ends stop first, then workers) and returns 0."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    terminated = asyncio.Event()

    def on_sigterm() -> None:
        log.info("SIGTERM: stopping — no new messages; deliveries in hand finish first")
        terminated.set()
        if task is not None:
            task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off the main thread
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await run
    except asyncio.CancelledError:
        if not terminated.is_set():
            raise
        return 0
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


async def _run_bot(platform: str, settings: Settings, *, sync: bool, with_worker: bool) -> int:
    async with AsyncExitStack() as stack:
        if not sync:
            settings = await serve_local_images(settings, stack)
        runtime = await stack.enter_async_context(open_runtime(settings))
        health = await stack.enter_async_context(
            health_endpoints(
                runtime.settings, {"redis": redis_check(runtime.redis)}, [queue_depth(runtime.redis)]
            )
        )
        tasks: list[asyncio.Future[None]] = []
        try:
            if with_worker and not sync:
                tasks.append(await start_worker(runtime))
            tasks.append(asyncio.ensure_future(_front_end(platform, runtime, sync, health)))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            await to_the_end(stop_in_order(tasks))
    return 0


async def stop_in_order(tasks: list[asyncio.Future[None]]) -> None:
    """The front end stops taking messages first, then the worker; each is stopped even if one before failed
    (run through `to_the_end`: a second SIGTERM does not leave the worker running behind a stopped bot)."""
    for task in reversed(tasks):
        failed = task.done() and not task.cancelled() and task.exception() is not None  # raised already
        try:
            await cancel_and_wait(task)
        except Exception:
            if not failed:
                log.exception("%r failed while stopping", task)
