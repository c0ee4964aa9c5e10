"""The job's progress reporter: PROGRESS events at most once per interval, with live previews when enabled.

A live preview is an image users see, so it goes through the same image check as the final images, under the
request's policy: only a picture the check lets through unblurred (DELIVER) is published; a refused picture, or
a check that fails, publishes none. It is a small JPEG data: URL on the PROGRESS event (bounded in size), at
most one per `live_preview_interval_s`, never more than one being checked at a time, the first once a quarter
of the steps are done (before that the latents are mostly noise), and none after the model call: the job
awaits `close()`, which lets the one being checked finish, before it stores and delivers the result.

Previews are the operator's choice (WorkerSettings.live_previews) and each user's: one who turned them off in
/settings (UserPrefs.previews) gets the text progress only, and the worker decodes none for their render. The
preference is read from Redis when the render starts rather than carried on the request, so a worker or bot of
the previous version still reads every request this one writes (the request forbids unknown fields).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from concurrent.futures import Future
from dataclasses import replace

from PIL import Image
from pydantic import ValidationError

from core.models.request import GenerationRequest
from core.models.result import LIVE_PREVIEW_MAX_CHARS, LIVE_PREVIEW_PREFIX, EventKind, ResultEvent
from moderation.image_check import ImageAction, ImagePolicy
from worker.context import WorkerContext
from worker.postprocess import make_preview

log = logging.getLogger(__name__)

DATA_URL_PREFIX = LIVE_PREVIEW_PREFIX
MAX_JPEG_BYTES = (LIVE_PREVIEW_MAX_CHARS - len(DATA_URL_PREFIX)) * 3 // 4


def encode_live_preview(image: Image.Image, size: tuple[int, int], max_side: int) -> bytes:
    """The latent picture at the request's aspect, `max_side` at most, as a JPEG that fits a PROGRESS event."""
    scale = min(1.0, max_side / max(size))
    target = max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
    return make_preview(image.resize(target, Image.Resampling.BILINEAR), max_side, "jpeg", MAX_JPEG_BYTES)


async def previews_wanted(ctx: WorkerContext, request: GenerationRequest) -> bool:
    """Whether this render's progress shows live previews: the worker makes them and the user who asked didn't
    turn them off in /settings."""
    if not ctx.settings.worker.live_previews:
        return False
    requester = request.requester
    try:
        prefs = await ctx.preferences.get(requester.platform, requester.user_id)
    except ValidationError:  # a record this version can't read (a newer one's): previews stay as the worker's
        log.warning("request %s: the user's preferences could not be read", request.request_id)
        return True
    return prefs.previews


class ProgressReporter:
    """A thread-safe progress callback (worker.backend.ProgressCallback) that is also a PreviewSink."""

    def __init__(
        self,
        ctx: WorkerContext,
        request: GenerationRequest,
        min_interval_s: float = 1.0,
        previews: bool = True,
    ) -> None:
        """`previews`: the user's choice (previews_wanted); previews need it and the worker's setting both on."""
        self.ctx, self.request, self.min_interval_s = ctx, request, min_interval_s
        self.loop = asyncio.get_running_loop()
        self.last = 0.0
        settings = ctx.settings.worker
        self.previews = settings.live_previews and previews
        self.preview_interval_s = settings.live_preview_interval_s
        self.last_preview: float | None = None
        self.checking = False  # a preview is being encoded and checked
        self.pending: Future[None] | None = None
        self.closed = False  # the model call is over: no more previews
        self.finished = False  # and the last one was published or dropped: nothing more is published

    def _event(self, step: int, total: int, live_preview: str | None = None) -> ResultEvent:
        request = self.request
        return ResultEvent(
            kind=EventKind.PROGRESS,
            request_id=request.request_id,
            requester=request.requester,
            reply_to=request.reply_to,
            model=request.model,
            step=step,
            total_steps=total,
            live_preview=live_preview,
        )

    def __call__(self, step: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.min_interval_s and step < total:
            return
        self.last = now
        asyncio.run_coroutine_threadsafe(self.ctx.events.publish(self._event(step, total)), self.loop)

    def preview_due(self, step: int, total: int) -> bool:
        if not self.previews or self.closed or self.checking or step * 4 < total:
            return False
        return self.last_preview is None or time.monotonic() - self.last_preview >= self.preview_interval_s

    def preview(self, step: int, total: int, image: Image.Image) -> None:
        if self.closed:
            return
        self.checking = True
        self.last_preview = time.monotonic()
        self.pending = asyncio.run_coroutine_threadsafe(self._publish_preview(step, total, image), self.loop)

    async def close(self) -> None:
        """The model call is over: no new previews, and the one being checked is published (or not) before
        this returns, so no preview follows the result."""
        self.closed = True
        if self.pending is not None:
            await asyncio.wrap_future(self.pending)
        self.finished = True

    async def _publish_preview(self, step: int, total: int, image: Image.Image) -> None:
        ctx, request = self.ctx, self.request
        try:
            size = (request.width, request.height)
            data = await ctx.cpu(encode_live_preview, image, size, ctx.settings.worker.live_preview_max_side)
            verdict = await ctx.image_moderator.check_image(data)
            policy = ImagePolicy.from_settings(ctx.settings.moderation)
            if request.image_policy is not None:
                policy = replace(policy, policy=request.image_policy)
            action = policy.decide(verdict, request.requester.age_restricted)
            if action is not ImageAction.DELIVER:
                log.info(
                    "request %s: live preview at step %d not shown (%s)", request.request_id, step, action
                )
                return
            if not self.finished:
                url = DATA_URL_PREFIX + base64.b64encode(data).decode("ascii")
                await ctx.events.publish(self._event(step, total, url))
        except Exception:
            log.warning("request %s: live preview at step %d failed", request.request_id, step, exc_info=True)
        finally:
            self.checking = False
