"""`imagebot telegram|discord`: a front end over the core service, optionally with an in-process worker."""

from __future__ import annotations

import asyncio
import contextlib

from cli.runtime import open_runtime
from core.settings import Settings


async def run_bot(platform: str, settings: Settings, *, sync: bool = False, with_worker: bool = False) -> int:
    async with open_runtime(settings) as runtime:
        if platform == "telegram":
            from bots.telegram import run_telegram_bot

            bot = run_telegram_bot(runtime.settings, runtime.service, runtime.redis, admin=runtime.admin)
        else:
            from bots.discord import run_discord_bot

            bot = run_discord_bot(
                runtime.settings, runtime.service, runtime.redis, sync=sync, admin=runtime.admin
            )
        tasks = [asyncio.ensure_future(bot)]
        if with_worker and not sync:
            from worker.main import queues_for, run_workers

            tasks.append(
                asyncio.ensure_future(run_workers(runtime.settings, queues_for(runtime.settings, "all")))
            )
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    return 0
