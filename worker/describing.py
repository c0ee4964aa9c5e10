"""The arq `describe` job: an image → four prompt suggestions, ending in exactly one terminal event.

DESCRIBED with the suggestions, REFUSED when the image check refuses the picture (nothing charged), FAILED with
an apology when the captioner fails for good. A local captioner's failure is retried while tries remain, then
handed to OpenAI's vision model when a key is configured (as image generation falls back, worker/jobs.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq import Retry

from core import constants as c
from core.errors import NotFound, StorageError, UserError
from core.governance.quotas import owner_id
from core.jobs.captions import CaptionJobs
from core.jobs.queue import cloud_job_id
from core.models.describe import DescribeRequest
from core.models.result import EventKind, ResultEvent
from moderation.image_check import ImageAction, ImagePolicy
from worker.context import WorkerContext

log = logging.getLogger(__name__)

REFUSED_IMAGE = "I can't describe that picture: it didn't pass the image check."


def _event(request: DescribeRequest, kind: EventKind, **fields: Any) -> ResultEvent:
    return ResultEvent(
        kind=kind,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        **fields,
    )


async def describe(ctx: dict[str, Any], request_id: str) -> str:
    deps: WorkerContext = ctx["imagebot"]
    job_try: int = ctx.get("job_try", 1)
    try:
        request = await CaptionJobs(deps.redis).load(request_id)
    except NotFound:
        log.error("describe %s: not found in Redis; dropping the job", request_id)
        return "missing"
    if await deps.results.exists(request_id):
        return "done"
    if job_try > deps.settings.worker.max_tries:
        await _finish(deps, request, _apology(request))
        return "failed"
    if "score" in ctx:
        await deps.fair.started(deps.queue_name, float(ctx["score"]))
    try:
        async with asyncio.timeout(deps.settings.captioner.timeout_s):
            event = await _describe(deps, request)
    except UserError as exc:
        await _finish(
            deps, request, _event(request, EventKind.FAILED, reason_code=exc.reason_code, message=exc.message)
        )
        return "failed"
    except Exception as exc:  # the captioner or storage: retry, fall back, or apologise
        log.exception("describe %s: try %d failed", request_id, job_try)
        retriable = not isinstance(exc, StorageError)  # a missing image stays missing
        if retriable and job_try < deps.settings.worker.max_tries:
            raise Retry() from exc
        if await _fall_back(deps, request):
            return "fallback"
        await _finish(deps, request, _apology(request))
        return "failed"
    await _finish(deps, request, event)
    return event.kind.value


async def _describe(deps: WorkerContext, request: DescribeRequest) -> ResultEvent:
    data = await deps.store.get(request.image)
    verdict = await deps.image_moderator.check_image(data)
    action = ImagePolicy.from_settings(deps.settings.moderation).decide(verdict, False)
    if action is not ImageAction.DELIVER:
        log.info("describe %s: image refused (%s)", request.request_id, ",".join(verdict.categories))
        return _event(request, EventKind.REFUSED, reason_code="image_refused", message=REFUSED_IMAGE)
    if deps.captioner is None:
        raise RuntimeError("this worker has no captioner")
    suggestions = await deps.captioner.suggest(data)
    log.info(
        "describe %s: %d suggestions by %s", request.request_id, len(suggestions.prompts), suggestions.backend
    )
    return _event(
        request,
        EventKind.DESCRIBED,
        backend=suggestions.backend,
        suggestions=suggestions.prompts,
        message=suggestions.note,
    )


def _apology(request: DescribeRequest) -> ResultEvent:
    return _event(
        request,
        EventKind.FAILED,
        reason_code="describe_failed",
        message=f"Sorry — I couldn't describe that picture (request {request.request_id}). Please try again.",
    )


async def _finish(deps: WorkerContext, request: DescribeRequest, event: ResultEvent) -> None:
    """Keep the charge for a description, give it back for anything else; keep the result; tell the bot."""
    charged = deps.settings.captioner.images_charged
    if event.kind is EventKind.DESCRIBED:
        await deps.quotas.commit(request.request_id, delivered=charged, requested=charged)
    else:
        await deps.quotas.refund(request.request_id)
    await deps.results.save(event)
    await deps.events.publish(event)


async def _fall_back(deps: WorkerContext, request: DescribeRequest) -> bool:
    if deps.is_cloud or not deps.cloud_enabled or deps.settings.captioner.backend == "local":
        return False
    weight = await deps.quotas.weight_of(request.requester)
    score = await deps.fair.score(c.QUEUE_CLOUD, owner_id(request.requester), 1, weight)
    await CaptionJobs(deps.redis).enqueue(
        request, c.QUEUE_CLOUD, score, job_id=cloud_job_id(request.request_id)
    )
    log.warning("describe %s: the local captioner failed for good; handed to OpenAI", request.request_id)
    return True
