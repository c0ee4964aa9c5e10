"""Start-up shared by every command: Redis (configured or embedded) and the core service."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from arq.connections import ArqRedis

from cli.redis_server import EmbeddedRedis
from core.governance.admin import AdminService
from core.jobs.connection import create_queue_pool
from core.service import ImagineService
from core.settings import Settings, updated
from core.storage.factory import build_store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings  # with redis_url filled in
    redis: ArqRedis
    service: ImagineService
    admin: AdminService


def with_redis(settings: Settings, stack: AsyncExitStack) -> Settings:
    """The settings, pointing at an embedded Redis (started on the stack) when IMAGEBOT_REDIS_URL is unset."""
    if settings.redis_url:
        return settings
    server = EmbeddedRedis(data_dir=settings.data_dir / "redis").start()
    stack.callback(server.stop)
    log.info("IMAGEBOT_REDIS_URL is not set: using an embedded Redis on 127.0.0.1:%d", server.port)
    return updated(settings, {"redis_url": server.url})


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with AsyncExitStack() as stack:
        settings = with_redis(settings, stack)
        assert settings.redis_url is not None
        redis = await create_queue_pool(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        store = build_store(settings)
        stack.push_async_callback(store.close)
        from moderation.factory import build_admin, build_prompt_moderator, build_provenance_reader

        service = ImagineService(
            redis,
            settings,
            store,
            build_prompt_moderator(settings, redis),
            provenance=build_provenance_reader(settings),
        )
        yield Runtime(settings, redis, service, build_admin(settings, service, redis))
