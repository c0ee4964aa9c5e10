"""Result events → the open pages of the user they belong to, as server-sent events.

The web's own stream (local users) is read in the bots' consumer group like every bot reads its platform's, so
a web process that restarts still settles what finished meanwhile (the gallery shows it). In a community
deployment, results asked for through a link are the chat bot's to deliver; the web also follows those streams
without a group (acknowledging nothing) to show their progress on the page. The Hub hands each event to the
queues of the pages of that event's owner; a page that keeps up with nothing loses old progress, never results
(a full queue drops PROGRESS first, and a page that missed a result finds it in the gallery).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import web
from redis.asyncio import Redis

from bots.web.context import CONTEXT
from bots.web.hub import Hub
from bots.web.markup import event_view
from bots.web.requester import current
from core.delivery.events import latest_id, stream_key
from core.errors import NotFound
from core.models.request import GenerationRequest, Platform
from core.models.result import ResultEvent
from core.service import ImagineService

log = logging.getLogger(__name__)


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /api/events: the visitor's result events as server-sent events, until the page goes away."""
    session, context = current(request), request.app[CONTEXT]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    with context.hub.watch(session.requester) as queue, contextlib.suppress(ConnectionResetError):
        await response.prepare(request)  # watching already: nothing published from here on is missed
        await response.write(b"retry: 2000\n: connected\n\n")
        while True:  # until the page goes away (its connection resets)
            try:
                event = await asyncio.wait_for(queue.get(), context.tuning.keepalive_s)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            view = event_view(event, await _request(context.service, event.request_id))
            await response.write(f"data: {json.dumps(view)}\n\n".encode())
    return response


async def _request(service: ImagineService, request_id: str) -> GenerationRequest | None:
    try:
        return await service.queue.load(request_id)
    except NotFound:
        return None


async def follow_platform(
    hub: Hub, redis: Redis, platform: Platform, stop: asyncio.Event, block_ms: int = 1000
) -> None:
    """Show on the pages what another front end delivers (results asked for through a link): read that
    platform's stream from now on, without a group, acknowledging nothing; ride out Redis going away."""
    after: str | None = None
    while not stop.is_set():
        try:
            if after is None:
                after = await latest_id(redis, platform)
            response = await redis.xread({stream_key(platform): after}, block=block_ms, count=100)
            for _, entries in response or []:
                for entry_id, fields in entries:
                    after = entry_id.decode()
                    await hub.publish(ResultEvent.model_validate_json(fields[b"event"]))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("following the %s stream failed (%s); retrying", platform, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
