"""`imagebot web`: the web front end over the core service, with an in-process worker on the embedded default.

With no settings at all it runs everything on one machine, like `imagebot imagine`: an embedded Redis, a worker
in this process, local storage, and the pages (which serve the images themselves) on http://127.0.0.1:8790 for
one local user. With IMAGEBOT_REDIS_URL set it is one more front end of a deployment (workers run elsewhere,
unless --with-worker), and with IMAGEBOT_WEB__SECRET the visitors are the chat users the bots' signed links name.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack

from cli.bots import start_worker, stop_in_order, until_sigterm
from cli.health import health_endpoints, redis_check
from cli.runtime import open_runtime
from core.settings import Settings
from core.tasks import to_the_end

log = logging.getLogger(__name__)


def _announce(url: str) -> None:
    print(f"imagebot web: open {url}/ in your browser (Ctrl-C stops it)", file=sys.stderr, flush=True)


async def run_web(
    settings: Settings, *, with_worker: bool | None = None, ready: Callable[[str], None] | None = None
) -> int:
    """Serve the pages until cancelled or SIGTERM (then 0). `with_worker` defaults to True on the embedded Redis
    (nothing else would render) and False against a configured one."""
    return await until_sigterm(_run_web(settings, with_worker, ready))


async def _run_web(settings: Settings, with_worker: bool | None, ready: Callable[[str], None] | None) -> int:
    from bots.web import run_web_bot

    in_process = with_worker if with_worker is not None else not settings.redis_url
    async with AsyncExitStack() as stack:
        runtime = await stack.enter_async_context(open_runtime(settings))
        await stack.enter_async_context(
            health_endpoints(runtime.settings, {"redis": redis_check(runtime.redis)})
        )
        tasks: list[asyncio.Future[None]] = []
        try:
            if in_process:
                tasks.append(await start_worker(runtime))
            front = run_web_bot(runtime.settings, runtime.service, runtime.redis, ready=ready or _announce)
            tasks.append(asyncio.ensure_future(front))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            # The pages stop first, then the worker; to the end even when another cancel (a second SIGTERM)
            # lands meanwhile, which is raised once both have stopped.
            await to_the_end(stop_in_order(tasks))
    return 0
