"""`imagebot imagine "…"`: the whole path on one machine — embedded Redis, an in-process worker, local storage."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from pathlib import Path

from cli.runtime import Runtime, open_runtime
from core import constants as c
from core.commands.grammar import parse_imagine
from core.delivery.events import follow, latest_id
from core.errors import UserError
from core.jobs.workers import WorkerRegistry
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from core.settings import Settings

log = logging.getLogger(__name__)

WORKER_READY_TIMEOUT_S = 600  # a real model's first download can take minutes


async def _wait_for_result(runtime: Runtime, request_id: str, after: str, timeout_s: float) -> ResultEvent:
    async with asyncio.timeout(timeout_s):
        async for event in follow(runtime.redis, Platform.CLI, after):
            if event.request_id != request_id:
                continue
            if event.kind is EventKind.PROGRESS and event.total_steps:
                print(f"  rendering… step {event.step}/{event.total_steps}", file=sys.stderr)
            if event.terminal:
                return event
    raise AssertionError("unreachable: follow() never ends")


def _describe(event: ResultEvent) -> str:
    if event.kind is not EventKind.DONE:
        return f"{event.kind.value}: {event.message}"
    lines = [
        f"done: {len(event.images)} image(s) with {event.model}"
        + (" (from cache)" if event.cached else "")
        + (" (OpenAI fallback)" if event.fallback else "")
    ]
    for image in event.images:
        lines.append(
            f"  image {(image.index or 0) + 1}: {image.width}x{image.height} seed {image.seed}  {_show(image.url)}"
        )
    if event.grid:
        lines.append(f"  grid:    {event.grid.width}x{event.grid.height}  {_show(event.grid.url)}")
    if event.message:
        lines.append(f"  note: {event.message}")
    return "\n".join(lines)


def _show(url: str) -> str:
    return url.removeprefix("file://") if url.startswith("file://") else url


async def imagine(settings: Settings, text: str, *, timeout_s: float = 900) -> int:
    from worker.main import queues_for, run_workers

    try:  # say what is wrong with the command before spending seconds on loading models
        parse_imagine(text, default_model=settings.default_model, limits=settings.limits)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    async with open_runtime(settings) as runtime:
        workers = asyncio.ensure_future(run_workers(runtime.settings, queues_for(runtime.settings, "all")))
        try:
            print("starting the worker and loading models…", file=sys.stderr)
            await WorkerRegistry(runtime.redis).wait_until_serving(
                c.QUEUE_GPU, WORKER_READY_TIMEOUT_S, workers
            )
            last_id = await latest_id(runtime.redis, Platform.CLI)
            requester = Requester(platform=Platform.CLI, user_id=getpass.getuser(), chat_id=str(Path.cwd()))
            try:
                submission = await runtime.service.imagine(text, requester)
            except UserError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 2
            for note in submission.notes:
                print(f"note: {note}", file=sys.stderr)
            print(
                f"request {submission.request_id} "
                + ("served from cache" if submission.cached else f"queued at position {submission.position}"),
                file=sys.stderr,
            )
            event = await _wait_for_result(runtime, submission.request_id, last_id, timeout_s)
            print(_describe(event))
            return 0 if event.kind is EventKind.DONE else 1
        finally:
            workers.cancel()
            try:
                await workers
            except (asyncio.CancelledError, Exception):
                log.debug("workers stopped", exc_info=True)
