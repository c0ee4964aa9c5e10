"""The arq job: every request ends in exactly one terminal result event, whatever happens.

Failure paths: a user error (refused output, unsupported option) → REFUSED/FAILED with its message; a backend
failure → retried while tries remain, then handed to OpenAI when that is configured and can do it, else FAILED
with an apology and the request id; a worker killed mid-job → arq retries once the job's lease lapses (three
heartbeats, see worker/heartbeat.py), the retry tells the user so, and the try past our limit reports FAILED
instead of vanishing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arq import Retry

from core import constants as c
from core import metrics
from core.delivery.events import was_delivered
from core.delivery.result_store import stored_keys
from core.errors import (
    BackendUnavailable,
    GenerationFailed,
    ImagebotError,
    NotFound,
    PromptRejected,
    SystemFailure,
    UserError,
)
from core.governance.quotas import owner_id, paid_quote
from core.jobs.queue import cloud_job_id
from core.jobs.routing import cloud_capable
from core.models.request import GenerationRequest
from core.models.result import EventKind, ResultEvent
from worker.context import WorkerContext
from worker.ledger import record_job
from worker.live_preview import previews_wanted
from worker.render import generate_images, load_source, progress_reporter, store_outputs

log = logging.getLogger(__name__)

NO_GENERATOR = "No image generator can take this right now. Please try again in a few minutes."
RETRY_MESSAGE = "A generator stopped while making this; trying again…"
STALE_MESSAGE = (
    "Sorry — your request waited too long for a free generator, so I've dropped it rather than surprise you "
    "hours later. Please ask again."
)


def apology(request_id: str) -> str:
    return f"Sorry — something went wrong on our side while making your image (request {request_id}). Please try again."


async def generate(ctx: dict[str, Any], request_id: str) -> str:
    deps: WorkerContext = ctx["imagebot"]
    job_try: int = ctx.get("job_try", 1)
    max_tries = deps.settings.worker.max_tries
    try:
        request = await deps.queue.load(request_id)
    except NotFound:
        log.error("request %s: not found in Redis; dropping the job", request_id)
        return "missing"
    if await deps.results.exists(request_id):
        # a job run again after it had ended (handed back while it was finishing, a lease that lapsed late)
        log.info("request %s: already ended; not rendered again", request_id)
        await _publish_unless_delivered(deps, request_id)
        return "done"
    if await deps.queue.was_cancelled(request_id):
        log.info("request %s: cancelled before it started", request_id)
        await deps.quotas.refund(request_id)  # idempotent: the cancel already refunded
        return "cancelled"
    if job_try > max_tries:
        # arq retried a job whose worker died mid-run; our tries are used up.
        await _finish(deps, request, _failure(request, EventKind.FAILED, "worker_lost", apology(request_id)))
        return "failed"
    if time.time() - request.created_at > c.STALE_JOB_S:
        await _finish(deps, request, _failure(request, EventKind.FAILED, "stale", STALE_MESSAGE))
        return "failed"

    if "score" in ctx:
        await deps.fair.started(deps.queue_name, float(ctx["score"]))
    started = time.monotonic()
    await _announce(deps, request, job_try)
    try:
        async with asyncio.timeout(deps.job_timeout_s):
            timings = {"queued": round(max(0.0, time.time() - request.created_at), 4)}
            source = await load_source(deps, request, timings)
            reporter = progress_reporter(deps, request, previews=await previews_wanted(deps, request))
            try:
                generation = await generate_images(deps, request, source, reporter, timings)
            finally:
                await reporter.close()
            event = await store_outputs(deps, request, generation, source, started, timings)
    except UserError as exc:
        refused = isinstance(exc, PromptRejected)
        kind = EventKind.REFUSED if refused else EventKind.FAILED
        code = exc.code if isinstance(exc, PromptRejected) else exc.reason_code
        await _finish(deps, request, _failure(request, kind, code, exc.message))
        return kind.value
    except Exception as exc:  # the backend, storage or a bug: retry, fall back, or report
        retriable = isinstance(exc, GenerationFailed | TimeoutError) or not isinstance(exc, ImagebotError)
        log.exception("request %s: try %d/%d failed", request_id, job_try, max_tries)
        if retriable and job_try < max_tries:
            raise Retry() from exc  # no defer: the job keeps its fair-queue score instead of a wall-clock one
        handed = await _fall_back(deps, request)
        if handed == "handed":
            return "fallback"
        code = exc.reason_code if isinstance(exc, SystemFailure) else "generation_failed"
        # Internals (which backend, which key, which error) stay in the log; users get one of two plain texts.
        message = NO_GENERATOR if isinstance(exc, BackendUnavailable) else apology(request_id)
        if handed == "over_budget":
            message += " (Today's budget for the paid image service is used up, so it couldn't stand in.)"
        await _finish(deps, request, _failure(request, EventKind.FAILED, code, message))
        return "failed"
    return await _done(deps, request, event, started)


async def _publish_unless_delivered(deps: WorkerContext, request_id: str) -> None:
    """The ended request's result, published again unless a front end already replied with it. Redis can fail
    between keeping a result and publishing it (a failover while the job finished): the retry that follows finds
    the result kept and must still get it to the user. The consumers' delivered markers keep it to one reply."""
    ended = await deps.results.load(request_id)
    if not await was_delivered(deps.redis, ended):
        log.info("request %s: its result was kept but never delivered; published again", request_id)
        await deps.events.publish(ended)


async def _done(deps: WorkerContext, request: GenerationRequest, event: ResultEvent, started: float) -> str:
    """A render that made images: kept and delivered — unless it was cancelled while it ran (the owner's
    /forget), when nothing is kept."""
    if await deps.queue.was_cancelled(request.request_id):
        await _drop_cancelled(deps, request, event)
        return "cancelled"
    await deps.queue.record_duration(deps.queue_name, time.monotonic() - started, request)
    if shareable(request, event):
        await deps.cache.put(request, event)
    await _finish(deps, request, event)
    log.info(
        "request %s: done in %.2f s (%d images)",
        request.request_id,
        time.monotonic() - started,
        len(event.images),
    )
    return "done"


async def _announce(deps: WorkerContext, request: GenerationRequest, job_try: int) -> None:
    """STARTED; on a retry it says so, replacing the progress the user saw stop (a killed worker's "18%")."""
    if job_try > 1:
        log.info("request %s: try %d starting", request.request_id, job_try)
    await deps.events.publish(
        ResultEvent(
            kind=EventKind.STARTED,
            request_id=request.request_id,
            requester=request.requester,
            reply_to=request.reply_to,
            model=request.model,
            message=RETRY_MESSAGE if job_try > 1 else None,
        )
    )


def shareable(request: GenerationRequest, event: ResultEvent) -> bool:
    """Only results any viewer anywhere may see are replayed from the cache: nothing withheld or spoilered, and
    nothing made in an age-restricted channel, where a community's policy may have let flagged images through."""
    complete = len(event.images) == request.n and not any(image.spoiler for image in event.images)
    return complete and not request.requester.age_restricted


async def _drop_cancelled(deps: WorkerContext, request: GenerationRequest, event: ResultEvent) -> None:
    """A render cancelled while it ran: its files go (unless another result shows the same bytes), nothing is
    charged, nothing is kept, and the user's status message says so."""
    for key in stored_keys(event):
        if not await deps.results.references(key):
            await deps.store.delete(key)
    await deps.quotas.refund(request.request_id)
    cancelled = _failure(
        request, EventKind.CANCELLED, "cancelled", "Cancelled while it was being drawn; nothing was kept."
    )
    await deps.events.publish(cancelled)
    log.info("request %s: cancelled while rendering; its images were deleted", request.request_id)


def _failure(request: GenerationRequest, kind: EventKind, code: str, message: str) -> ResultEvent:
    return ResultEvent(
        kind=kind,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        model=request.model,
        reason_code=code,
        message=message,
    )


async def _finish(deps: WorkerContext, request: GenerationRequest, event: ResultEvent) -> None:
    """Settle the quota (keep what was delivered, give back the rest), keep the result, tell the bot."""
    if event.kind is EventKind.DONE:
        await deps.quotas.commit(request.request_id, delivered=len(event.images), requested=request.n)
    else:
        await deps.quotas.refund(request.request_id)
    await deps.results.save(event)
    await deps.events.publish(event)
    _count(deps.queue_name, event)
    await record_job(deps, request, event)


def _count(queue: str, event: ResultEvent) -> None:
    """The job's outcome and where its time went, for /metrics."""
    metrics.JOBS.labels(queue=queue, outcome=event.kind.value, reason=event.reason_code or "").inc()
    for stage, key in (("queue_wait", "queued"), ("model", "model"), ("store", "store")):
        if key in event.timings:
            metrics.STAGE_SECONDS.labels(stage=stage).observe(event.timings[key])
    metrics.DEVICE_BUSY_SECONDS.inc(event.timings.get("model", 0.0))


async def _fall_back(deps: WorkerContext, request: GenerationRequest) -> str:
    """Hand a request a local worker could not make to OpenAI, when that is configured, able and affordable.

    Returns "handed", "over_budget" or "unavailable".
    """
    if deps.is_cloud or not deps.cloud_enabled or not cloud_capable(request):
        return "unavailable"
    cost = paid_quote(deps.settings.openai, request).total_usd
    if not await deps.quotas.charge_fallback(request.request_id, cost):
        log.warning("request %s: OpenAI can't stand in, today's paid budget is used up", request.request_id)
        return "over_budget"
    weight = await deps.quotas.weight_of(request.requester)
    score = await deps.fair.score(c.QUEUE_CLOUD, owner_id(request.requester), request.n, weight)
    queued = await deps.queue.enqueue(request, c.QUEUE_CLOUD, score, job_id=cloud_job_id(request.request_id))
    log.warning(
        "request %s: local generation failed for good; %s to OpenAI",
        request.request_id,
        "handed" if queued else "already handed",
    )
    return "handed"
