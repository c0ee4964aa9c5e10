"""How every process reaches the queue's Redis: one RedisSettings from a URL, and jobs as JSON, never pickle.

arq pickles jobs by default, so anyone who can write to Redis could run code on every worker. Our jobs carry
only ids, so JSON loses nothing: `dump_job`/`load_job` are the serializer pair given to every ArqRedis pool and
every Worker, and a job that is not a JSON object (a pickle, say) is refused by the worker without being run.
"""

from __future__ import annotations

import json
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import ConnectionPool

START_RETRIES = 30  # a process starting while Redis restarts waits this many times…
START_RETRY_DELAY_S = 1  # …this long apart before giving up


def dump_job(data: dict[str, Any]) -> bytes:
    """A job or a job's result as JSON. An exception in a result (arq keeps failures) becomes its text."""
    return json.dumps(data, default=_plain, separators=(",", ":")).encode()


def load_job(raw: bytes) -> dict[str, Any]:
    """Raises ValueError for anything but a JSON object (arq then fails the job without running it)."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("a job must be a JSON object")
    return data


def _plain(value: object) -> str:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"{type(value).__name__} cannot go on the queue: jobs carry plain data only")


JOB_SERIALIZERS: dict[str, Any] = {"job_serializer": dump_job, "job_deserializer": load_job}


def redis_settings(url: str) -> RedisSettings:
    """arq's settings for `url` (redis://[:password@]host:port/db), patient with a Redis that is restarting."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = START_RETRIES
    settings.conn_retry_delay = START_RETRY_DELAY_S
    return settings


async def create_queue_pool(url: str) -> ArqRedis:
    """A client that can enqueue jobs, speaking the workers' JSON."""
    return await create_pool(redis_settings(url), **JOB_SERIALIZERS)


def queue_client(pool: ConnectionPool) -> ArqRedis:
    """An ArqRedis over an existing connection pool (tests share one), speaking the workers' JSON."""
    return ArqRedis(pool, **JOB_SERIALIZERS)
