"""Shared fixtures: a real Redis server on a free port, a real S3 server (moto), settings for tests.

The tests' Redis has no password (the embedded one a user runs has a random one); the `redis` client speaks the
workers' JSON job format, like every pool the program opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from cli.redis_server import EmbeddedRedis
from core.jobs.connection import queue_client
from core.settings import Settings


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(protected=False) as server:
        yield server


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    """A client to the session's Redis server, flushed before each test."""
    client = queue_client(aioredis.ConnectionPool.from_url(redis_server.url))
    await client.flushall()
    yield client
    await client.aclose(close_connection_pool=True)


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis) -> Settings:
    """Settings for one test: the shared Redis, storage and model cache under tmp_path, no cloud."""
    return Settings(
        redis_url=redis_server.url,
        data_dir=tmp_path / "data",
        storage={"backend": "local", "local_dir": tmp_path / "images"},  # type: ignore[arg-type]
        worker={"model_cache_dir": tmp_path.parent / "models", "poll_delay_s": 0.02},  # type: ignore[arg-type]
        openai={"api_key": None},  # type: ignore[arg-type]
    )


pytest_plugins = ["tests.emulators.openai_fixture", "tests.pipeline_fixture", "tests.s3_fixture"]
