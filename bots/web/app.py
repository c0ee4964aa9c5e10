"""`run_web_bot`: the aiohttp application (pages, API, event stream, images) beside the result-event consumer.

`build_app` makes the application alone (tests drive it with aiohttp's client); `run_web_bot` serves it on
settings.web.host:port until cancelled, with the web's stream read in the bots' consumer group and, in a
community deployment, the chat platforms' streams followed for the pages' sake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from arq.connections import ArqRedis

from bots.web import commands, events, gallery, images, links, pages
from bots.web.context import CONTEXT, Tuning, WebContext
from bots.web.pages import STATIC
from bots.web.security import MIDDLEWARES, secure_headers
from core.delivery.events import consumer_for
from core.delivery.tally import DailyTally
from core.models.request import Platform
from core.service import ImagineService
from core.settings import Settings
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHAT_PLATFORMS = (Platform.TELEGRAM, Platform.DISCORD)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REQUEST_ID = "{request_id:[a-z2-7]{16}}"


def _routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/", pages.chat)
    router.add_get("/gallery", pages.gallery)
    router.add_get(f"/region/{REQUEST_ID}/{{index:[0-9]}}", pages.region)
    router.add_get("/link/{token}", links.open_link)
    router.add_get("/images/{tail:.+}", images.image)
    router.add_static("/static", str(STATIC), append_version=False)
    router.add_get("/api/events", events.stream)
    router.add_get("/api/gallery", gallery.gallery)
    router.add_get(f"/api/result/{REQUEST_ID}", gallery.result)
    router.add_post("/api/imagine", commands.imagine)
    router.add_post("/api/press", commands.press)
    router.add_post("/api/region", commands.region)
    router.add_post("/api/delete", commands.delete)


def _consume(
    context: WebContext, consumer_name: str | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def consume(app: web.Application) -> AsyncIterator[None]:
        """The web's stream in the bots' group, and the chat platforms' streams followed (community only)."""
        stop = asyncio.Event()
        settings = context.settings
        consumer = consumer_for(
            context.redis,
            Platform.WEB,
            settings.delivery,
            consumer_name,
            tally=DailyTally(context.redis, settings.retention.stats_s),
        )
        tasks = [asyncio.create_task(consumer.run(context.hub.publish, stop, context.tuning.event_block_ms))]
        if context.community:
            tasks += [
                asyncio.create_task(
                    events.follow_platform(
                        context.hub, context.redis, platform, stop, context.tuning.event_block_ms
                    )
                )
                for platform in CHAT_PLATFORMS
            ]
        yield
        stop.set()
        await asyncio.wait(tasks, timeout=context.tuning.stop_grace_s)
        for task in tasks:
            await cancel_and_wait(task)

    return consume


def build_app(
    settings: Settings,
    service: ImagineService,
    redis: ArqRedis,
    *,
    consumer_name: str | None = None,
    tuning: Tuning | None = None,
) -> web.Application:
    context = WebContext(settings, service, redis, tuning or Tuning())
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.web.max_body_bytes)
    app[CONTEXT] = context
    app.on_response_prepare.append(secure_headers)
    app.cleanup_ctx.append(_consume(context, consumer_name))
    _routes(app)
    return app


async def run_web_bot(
    settings: Settings,
    service: ImagineService,
    redis: ArqRedis,
    *,
    consumer_name: str | None = None,
    tuning: Tuning | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the pages on settings.web.host:port until cancelled; `ready` gets the base URL once listening.

    The access log is off: a link's path is a credential for its lifetime."""
    app = build_app(settings, service, redis, consumer_name=consumer_name, tuning=tuning)
    if not app[CONTEXT].community and settings.web.host not in LOOPBACK:
        log.warning(
            "the web pages listen on %s with no IMAGEBOT_WEB__SECRET: everyone who can reach them is the one "
            "local user (set a secret for signed links, or listen on 127.0.0.1)",
            settings.web.host,
        )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web.host, settings.web.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        log.info("web front end on %s", url)
        if ready is not None:
            ready(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
