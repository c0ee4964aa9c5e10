"""Worker processes: arq Workers for the GPU queue (diffusers) and the cloud queue (OpenAI).

Models load once in on_startup and stay warm; the heartbeat announces them only once they are loaded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq import Worker
from arq.connections import RedisSettings
from arq.worker import func

from core import constants as c
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.catalog import BackendKind, get_model
from core.models.verdict import AllowAll, ImageModerator
from core.settings import Settings
from core.storage.factory import build_store
from worker.backend import ImageBackend
from worker.context import WorkerContext, job_timeout_s
from worker.heartbeat import Heartbeat, default_worker_id
from worker.jobs import generate

log = logging.getLogger(__name__)

CLOUD_MAX_JOBS = 8


def _image_moderator(settings: Settings) -> ImageModerator:
    if not settings.moderation.image_check:
        return AllowAll()
    from moderation.factory import build_image_moderator

    return build_image_moderator(settings)


def _backends(settings: Settings, queue: str) -> tuple[dict[BackendKind, ImageBackend], tuple[str, ...]]:
    if queue == c.QUEUE_CLOUD:
        from worker.openai_backend import OpenAIBackend

        return {BackendKind.OPENAI: OpenAIBackend(settings.openai)}, (settings.openai.model,)
    from worker.diffusers_backend import DiffusersBackend
    from worker.registry import ModelRegistry

    registry = ModelRegistry(settings.worker)
    models = tuple(get_model(name).name for name in settings.worker.models)
    for name in models:
        registry.load(name)
    return {BackendKind.DIFFUSERS: DiffusersBackend(registry)}, models


def build_worker(
    settings: Settings, queue: str, *, burst: bool = False, handle_signals: bool = True
) -> Worker:
    """An arq Worker for `queue` whose start-up loads models and opens clients once."""
    gpu = queue == c.QUEUE_GPU
    job_timeout = job_timeout_s(settings, queue)

    async def startup(ctx: dict[str, Any]) -> None:
        backends, models = await asyncio.to_thread(_backends, settings, queue)
        deps = WorkerContext(
            settings=settings,
            queue_name=queue,
            redis=ctx["redis"],
            store=build_store(settings),
            backends=backends,
            image_moderator=_image_moderator(settings),
        )
        worker_id = settings.worker.name or default_worker_id(queue)
        heartbeat = Heartbeat(
            WorkerRegistry(ctx["redis"]),
            WorkerInfo(
                worker_id, queue, models, 0.0, max_jobs=settings.worker.max_jobs if gpu else CLOUD_MAX_JOBS
            ),
            settings.worker.heartbeat_interval_s,
        )
        await heartbeat.start()
        ctx["imagebot"], ctx["heartbeat"] = deps, heartbeat
        log.info("worker %s ready on %s with %s", worker_id, queue, ", ".join(models))

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "heartbeat" in ctx:
            await ctx["heartbeat"].stop()
        if "imagebot" in ctx:
            await ctx["imagebot"].close()

    async def after_job(ctx: dict[str, Any]) -> None:
        if "heartbeat" in ctx:
            ctx["heartbeat"].jobs_done += 1

    return Worker(
        functions=[func(generate, name=c.JOB_GENERATE, max_tries=settings.worker.max_tries + 1)],
        queue_name=queue,
        redis_settings=RedisSettings.from_dsn(settings.redis_url or "redis://localhost:6379"),
        burst=burst,
        on_startup=startup,
        on_shutdown=shutdown,
        after_job_end=after_job,
        handle_signals=handle_signals,
        max_jobs=settings.worker.max_jobs if gpu else CLOUD_MAX_JOBS,
        job_timeout=job_timeout + 5,  # the job's own timeout (the same value) fires first and reports it
        max_tries=settings.worker.max_tries + 1,  # one extra so a lost worker's last retry reports failure
        poll_delay=settings.worker.poll_delay_s,
        keep_result=3600,
        health_check_interval=30,
    )


def queues_for(settings: Settings, which: str) -> list[str]:
    """ "gpu", "cloud" or "all" (all: the cloud queue too when OpenAI is configured)."""
    if which == "gpu":
        return [c.QUEUE_GPU]
    if which == "cloud":
        return [c.QUEUE_CLOUD]
    return [c.QUEUE_GPU, c.QUEUE_CLOUD] if settings.openai.enabled else [c.QUEUE_GPU]


async def run_workers(settings: Settings, queues: list[str], *, burst: bool = False) -> None:
    workers = [build_worker(settings, queue, burst=burst, handle_signals=False) for queue in queues]
    try:
        await asyncio.gather(*(worker.async_run() for worker in workers))
    finally:
        for worker in workers:
            await worker.close()
