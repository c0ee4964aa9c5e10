"""How every process reaches the queue's Redis: one RedisSettings from a URL, and jobs as JSON, never pickle.

The URL is a plain one (redis://, rediss://, unix://) or names Sentinels (redis+sentinel://host:26379,…/master/db,
see core/settings.py `SentinelAddress`): then every client asks the Sentinels where the primary is on each new
connection, so after a failover the next connection goes to the promoted replica, and a connection still open to
an old primary that came back as a replica is dropped on its first write (redis-py's SentinelManagedConnection).

arq pickles jobs by default, so anyone who can write to Redis could run code on every worker. Our jobs carry
only ids, so JSON loses nothing: `dump_job`/`load_job` are the serializer pair given to every ArqRedis pool and
every Worker, and a job that is not a JSON object (a pickle, say) is refused by the worker without being run.
"""

from __future__ import annotations

import json
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel

from core.jobs.pipelining import AutoPipelined
from core.settings import sentinel_address

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
    sentinels = sentinel_address(url)
    if sentinels is None:
        settings = RedisSettings.from_dsn(url)
    else:
        settings = RedisSettings(
            host=list(sentinels.sentinels),
            sentinel=True,
            sentinel_master=sentinels.master,
            database=sentinels.db,
            username=sentinels.username,
            password=sentinels.password,
        )
    settings.conn_retries = START_RETRIES
    settings.conn_retry_delay = START_RETRY_DELAY_S
    return settings


async def create_queue_pool(url: str) -> ArqRedis:
    """A client that can enqueue jobs, speaking the workers' JSON, whose concurrent commands share pipelines
    (core/jobs/pipelining.py). It owns its connections: closing it closes them."""
    connected = await create_pool(redis_settings(url), **JOB_SERIALIZERS)
    client = queue_client(connected.connection_pool)
    client.auto_close_connection_pool = True
    return client


def queue_client(pool: ConnectionPool) -> ArqRedis:
    """An ArqRedis over an existing connection pool (tests share one), speaking the workers' JSON, whose
    concurrent commands share pipelines."""
    return AutoPipelined(pool, **JOB_SERIALIZERS)


def connect(url: str, **options: Any) -> Redis:
    """A plain redis-py client for `url` (Sentinel URLs too); `options` go to each connection (timeouts)."""
    sentinels = sentinel_address(url)
    if sentinels is None:
        return Redis.from_url(url, **options)
    sentinel = Sentinel(
        list(sentinels.sentinels),
        sentinel_kwargs={k: v for k, v in options.items() if k.startswith("socket_")},
        db=sentinels.db,
        username=sentinels.username,
        password=sentinels.password,
        **options,
    )
    return sentinel.master_for(sentinels.master)
