"""Worker processes: arq Workers for the GPU queue (diffusers) and the cloud queue (OpenAI).

Models load once at start-up and stay warm, the image check is warmed on a blank image, and only then does the
heartbeat announce the worker. A worker outlives its Redis: a lost connection (a restart, a failover) is retried
with backoff, logged once, and reported by `ready`, instead of ending the process. On SIGTERM the worker drains:
it takes no new jobs, gives the running ones IMAGEBOT_WORKER__DRAIN_S to finish, and hands the rest straight back
to the queue for another worker (no try used up, nothing charged twice) before the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
import time
from collections.abc import Iterator
from typing import Any

from arq import Worker
from arq.constants import retry_key_prefix
from arq.worker import func
from PIL import Image
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import constants as c
from core.jobs.connection import JOB_SERIALIZERS, redis_settings
from core.jobs.workers import WorkerInfo, WorkerRegistry
from core.models.catalog import BackendKind
from core.models.verdict import AllowAll, ImageModerator, Outcome
from core.settings import Settings
from core.storage.factory import build_store
from worker.backend import ImageBackend
from worker.captioner import Captioner
from worker.context import WorkerContext, job_timeout_s
from worker.describing import describe
from worker.heartbeat import Heartbeat, default_worker_id, lease_s
from worker.jobs import generate
from worker.threads import PostPool, limit_libraries, model_executor, plan_threads, usable_cores

log = logging.getLogger(__name__)

CLOUD_MAX_JOBS = 8
# Redis is unreachable, restarting (LOADING is a ConnectionError), or this node became a replica (failover).
REDIS_LOST = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 5.0


def _image_moderator(settings: Settings, post: PostPool) -> ImageModerator:
    if not settings.moderation.image_check:
        return AllowAll()
    from moderation.factory import build_image_moderator

    return build_image_moderator(settings, post.executor)


async def warm_up(moderator: ImageModerator) -> None:
    """Check one blank image, so that the first user's job does not pay for loading the image check."""
    blank = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(blank, format="PNG")
    started = time.monotonic()
    verdict = await moderator.check_image(blank.getvalue())
    if verdict.outcome is Outcome.CHECK_FAILED:
        log.warning("the image check failed on a blank image at start-up; see the error above")
    else:
        log.info("image check warmed up in %.2f s", time.monotonic() - started)


def _backends(
    settings: Settings, queue: str
) -> tuple[dict[BackendKind, ImageBackend], tuple[str, ...], PostPool]:
    """The queue's backends with their models loaded, and the post-processing threads that share the cores."""
    if queue == c.QUEUE_CLOUD:
        from worker.openai_backend import OpenAIBackend

        post = PostPool(plan_threads(settings.worker, "remote", usable_cores()))
        return {BackendKind.OPENAI: OpenAIBackend(settings.openai)}, (settings.openai.model,), post
    from worker.diffusers_backend import DiffusersBackend
    from worker.registry import ModelRegistry

    limit_libraries()
    registry = ModelRegistry(settings.worker)
    plan = plan_threads(settings.worker, registry.device, usable_cores())
    models = tuple(registry.load_configured())  # all of them are served, warm or evicted
    post = PostPool(plan)
    backend = DiffusersBackend(
        registry,
        adapters=settings.adapters,
        upscaler=settings.upscaler,
        executor=model_executor(plan),
        turns=post.share,
    )
    return {BackendKind.DIFFUSERS: backend}, models, post


def _captioner(settings: Settings, queue: str, backends: dict[BackendKind, ImageBackend]) -> Captioner | None:
    """The /describe backend this queue's worker offers: a local model on the GPU queue (sharing the renders'
    device guard, so one model call runs at a time), OpenAI on the cloud queue."""
    config = settings.captioner
    if queue == c.QUEUE_GPU and config.local_model and config.backend != "openai":
        from worker.captioner import TransformersCaptioner
        from worker.device import DeviceGuard, detect_device

        guard = getattr(backends.get(BackendKind.DIFFUSERS), "device", None)
        guard = guard if isinstance(guard, DeviceGuard) else None
        return TransformersCaptioner(config, detect_device(settings.worker), guard)
    if queue == c.QUEUE_CLOUD and settings.openai.enabled and config.backend != "local":
        from worker.captioner import OpenAICaptioner

        return OpenAICaptioner(settings.openai, config)
    return None


class ImagebotWorker(Worker):
    """arq's Worker, made to last: rides out Redis outages, drains on request, holds short leases on its jobs."""

    def __init__(self, settings: Settings, queue: str, *, burst: bool = False) -> None:
        self.settings = settings
        self.heartbeat: Heartbeat | None = None
        self.redis_ok = False  # the last poll of the queue worked
        self.draining = False
        self._lost_at: float | None = None
        self._backoff = RECONNECT_FIRST_S
        self._hurry = asyncio.Event()
        self._handed_back: set[str] = set()
        job_timeout = job_timeout_s(settings, queue)
        super().__init__(
            functions=[
                func(generate, name=c.JOB_GENERATE, max_tries=settings.worker.max_tries + 1),
                func(describe, name=c.JOB_DESCRIBE, max_tries=settings.worker.max_tries + 1),
            ],
            queue_name=queue,
            redis_settings=redis_settings(settings.redis_url or "redis://localhost:6379"),
            burst=burst,
            on_startup=self._startup,
            on_shutdown=self._shutdown,
            on_job_end=self._job_ended,
            after_job_end=self._after_job,
            handle_signals=False,  # run_workers drains on SIGTERM/SIGINT; arq's own handler would cancel jobs
            max_jobs=settings.worker.max_jobs if queue == c.QUEUE_GPU else CLOUD_MAX_JOBS,
            job_timeout=job_timeout + 5,  # the job's own timeout (the same value) fires first and reports it
            # one extra so a lost worker's last retry reports failure
            max_tries=settings.worker.max_tries + 1,
            poll_delay=settings.worker.poll_delay_s,
            keep_result=3600,
            health_check_interval=30,
            **JOB_SERIALIZERS,
        )
        # arq keeps a job's in-progress key for the job timeout + 10 s, which is how long a killed worker's job
        # waits: make it a short lease, which the heartbeat renews while the job runs.
        self.in_progress_timeout_s = lease_s(settings.worker.heartbeat_interval_s)

    @property
    def ready(self) -> bool:
        """Serving: started, reaching Redis, and not draining (what a /readyz reports)."""
        return self.redis_ok and not self.draining and self._pool is not None

    def running_jobs(self) -> list[str]:
        return [job_id for job_id, task in self.tasks.items() if not task.done()]

    async def _startup(self, ctx: dict[str, Any]) -> None:
        settings, queue = self.settings, self.queue_name
        backends, models, post = await asyncio.to_thread(_backends, settings, queue)
        log.info("worker threads on %s: %s", queue, post.plan.describe())
        captioner = await asyncio.to_thread(_captioner, settings, queue, backends)
        if captioner is not None and queue == c.QUEUE_GPU:
            models = (*models, c.CAPTIONER)  # routers send /describe here (core.jobs.captions)
        moderator = _image_moderator(settings, post)
        await warm_up(moderator)
        ctx["imagebot"] = WorkerContext(
            settings=settings,
            queue_name=queue,
            redis=ctx["redis"],
            store=build_store(settings),
            backends=backends,
            image_moderator=moderator,
            captioner=captioner,
            post=post,
        )
        await ctx["imagebot"].keeper.start()  # retention: the bucket's expiry rules, or the local sweeper
        worker_id = settings.worker.name or default_worker_id(queue)
        self.heartbeat = Heartbeat(
            WorkerRegistry(ctx["redis"]),
            WorkerInfo(worker_id, queue, models, 0.0, max_jobs=self.max_jobs),
            settings.worker.heartbeat_interval_s,
            running=self.running_jobs,
        )
        await self.heartbeat.start()
        self.redis_ok = True
        log.info("worker %s ready on %s with %s", worker_id, queue, ", ".join(models))

    async def _shutdown(self, ctx: dict[str, Any]) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if "imagebot" in ctx:
            await ctx["imagebot"].close()

    async def _job_ended(self, ctx: dict[str, Any]) -> None:
        job_id: str = ctx["job_id"]
        if job_id in self._handed_back:
            # arq counted this run as a try; a job handed back at shutdown did not fail, so it gets the try back
            with contextlib.suppress(*REDIS_LOST):
                await self.pool.decr(retry_key_prefix + job_id)
            log.info("job %s handed back to the queue for another worker", job_id)

    async def _after_job(self, ctx: dict[str, Any]) -> None:
        if self.heartbeat is not None:
            self.heartbeat.jobs_done += 1

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_LOST as exc:
            await self._lost(exc)
        else:
            self._regained()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, one job at a time, giving back the slot arq took for a job it could not start (Redis went away
        between the two), which arq itself would keep for ever, leaving the worker to think it is busy. A job this
        worker is running already (its lease lapsed while the process stalled) is not started twice."""
        for job_id in job_ids:
            mine = self.tasks.get(job_id.decode())
            if mine is not None and not mine.done():
                continue
            counter = self.job_counter
            try:
                await super().start_jobs([job_id])
            except REDIS_LOST:
                if self.job_counter > counter:
                    self._release_sem_dec_counter_on_complete()
                raise
            if self.job_counter >= self.max_jobs:
                return

    async def _lost(self, exc: BaseException) -> None:
        self.redis_ok = False
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            log.warning(
                "worker on %s lost Redis (%s: %s); reconnecting with backoff",
                self.queue_name,
                type(exc).__name__,
                exc,
            )
        else:
            log.debug("worker on %s: Redis still unreachable (%s)", self.queue_name, exc)
        # pooled connections to the old server are dead: drop the idle ones so the next try dials afresh
        await self.pool.connection_pool.disconnect(inuse_connections=False)
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, RECONNECT_MAX_S)

    def _regained(self) -> None:
        if self._lost_at is not None:
            log.warning(
                "worker on %s reached Redis again after %.1f s; serving",
                self.queue_name,
                time.monotonic() - self._lost_at,
            )
            self._lost_at = None
        self._backoff = RECONNECT_FIRST_S
        self.redis_ok = True

    def hurry(self) -> None:
        """End a drain now: hand the running jobs back without waiting for them."""
        self._hurry.set()

    async def drain(self, deadline_s: float) -> int:
        """Take no new jobs, let the running ones finish within `deadline_s`, hand the rest back to the queue.

        Returns how many jobs were handed back. Their render threads cannot be interrupted and may still run.
        """
        self.allow_pick_jobs = False
        self.draining = True
        if self.heartbeat is not None:
            with contextlib.suppress(*REDIS_LOST):
                await self.heartbeat.withdraw()  # routers stop counting on this worker; its leases still hold
        running = [self.tasks[job_id] for job_id in self.running_jobs()]
        if running:
            log.warning(
                "worker on %s draining: %d job(s) running, %.0f s to finish",
                self.queue_name,
                len(running),
                deadline_s,
            )
            finished = asyncio.ensure_future(asyncio.wait(running))  # cancelling this leaves the jobs alone
            hurry = asyncio.ensure_future(self._hurry.wait())
            await asyncio.wait([finished, hurry], timeout=deadline_s, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            hurry.cancel()
        return await self._hand_back()

    async def _hand_back(self) -> int:
        """Cancel the running jobs: arq then puts each back in the queue (deleting its lease) at its old place."""
        running = {job_id: self.tasks[job_id] for job_id in self.running_jobs()}
        for job_id, task in running.items():
            self._handed_back.add(job_id)
            job = self.job_tasks.get(job_id)
            (job or task).cancel()  # a job not begun yet: its lease lapses and the job is retried
        await asyncio.gather(*running.values(), return_exceptions=True)
        return len(running)

    async def close(self) -> None:
        """Stop: running jobs go back to the queue, the heartbeat goes, clients close — with Redis or without."""
        self.allow_pick_jobs = False  # not even the jobs handed back now
        self.draining = True
        if self.main_task is not None:
            self.main_task.cancel()
        await self._hand_back()
        if self._pool is None:
            return
        with contextlib.suppress(*REDIS_LOST):
            await self.pool.delete(self.health_check_key)
        await self._shutdown(self.ctx)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None


def build_worker(settings: Settings, queue: str, *, burst: bool = False) -> ImagebotWorker:
    """An arq Worker for `queue` whose start-up loads models and opens clients once."""
    return ImagebotWorker(settings, queue, burst=burst)


def queues_for(settings: Settings, which: str) -> list[str]:
    """ "gpu", "cloud" or "all" (all: the cloud queue too when OpenAI is configured)."""
    if which == "gpu":
        return [c.QUEUE_GPU]
    if which == "cloud":
        return [c.QUEUE_CLOUD]
    return [c.QUEUE_GPU, c.QUEUE_CLOUD] if settings.openai.enabled else [c.QUEUE_GPU]


@contextlib.contextmanager
def _drain_on_signals(enabled: bool, stop: asyncio.Event, workers: list[ImagebotWorker]) -> Iterator[None]:
    """SIGTERM or SIGINT starts the drain; a second one hands the running jobs back at once."""
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: handing the running jobs back now", signum.name)
            for worker in workers:
                worker.hurry()
            return
        log.warning("%s: taking no more jobs; draining", signum.name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def run_workers(settings: Settings, queues: list[str], *, burst: bool = False) -> None:
    """Run one worker per queue in this process until they end (burst mode), one fails, or this is cancelled."""
    await _run(settings, queues, burst=burst, handle_signals=False)


async def run_worker_process(settings: Settings, queues: list[str], *, burst: bool = False) -> int:
    """`imagebot worker`: run_workers, until SIGTERM or SIGINT drains the workers (see ImagebotWorker.drain).

    Returns how many jobs were handed back unfinished (their render threads may still be running).
    """
    return await _run(settings, queues, burst=burst, handle_signals=True)


async def _run(settings: Settings, queues: list[str], *, burst: bool, handle_signals: bool) -> int:
    workers = [build_worker(settings, queue, burst=burst) for queue in queues]
    stop = asyncio.Event()
    runs = asyncio.gather(*(worker.async_run() for worker in workers))
    stopping = asyncio.ensure_future(stop.wait())
    handed_back = 0
    try:
        with _drain_on_signals(handle_signals, stop, workers):
            waiting: list[asyncio.Future[Any]] = [runs, stopping]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                runs.result()  # burst mode's end, or the error that stopped a worker
                return 0
            drained = await asyncio.gather(*(w.drain(settings.worker.drain_s) for w in workers))
            handed_back = sum(drained)
    finally:
        stopping.cancel()
        for worker in workers:
            await worker.close()
        runs.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runs
    return handed_back
