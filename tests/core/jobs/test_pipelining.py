"""AutoPipelined: concurrent callers' commands share one write on one connection, and each caller still gets
exactly its own reply, its own error, and hears about a lost connection. On a real Redis server."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from cli.redis_server import EmbeddedRedis
from core.jobs.connection import queue_client
from core.jobs.pipelining import AutoPipelined, may_share

# Spins on the server for ARGV[1] ms: a command that is still being answered when the test acts
_SLOW = """
local start = redis.call('TIME')
local until_us = (tonumber(start[1]) * 1000000 + tonumber(start[2])) + tonumber(ARGV[1]) * 1000
repeat local now = redis.call('TIME') until tonumber(now[1]) * 1000000 + tonumber(now[2]) >= until_us
return 'done'
"""


async def reads(client: aioredis.Redis) -> int:
    """How many times the server has read from its clients' sockets: a pipeline arrives in one read or a few."""
    return int((await client.info("stats"))["total_reads_processed"])


async def test_concurrent_commands_travel_together_and_each_caller_gets_its_own_reply() -> None:
    with EmbeddedRedis(protected=False) as server:  # its own server: nothing else reads or writes there
        client = queue_client(aioredis.ConnectionPool.from_url(server.url))
        assert isinstance(client, AutoPipelined)
        observer = aioredis.Redis.from_url(server.url)
        before = await reads(observer)
        counts = await asyncio.gather(*(client.incr("counter") for _ in range(200)))
        assert sorted(counts) == list(range(1, 201))  # every caller its own reply, none lost or doubled
        assert await reads(observer) - before <= 10  # 200 commands in a handful of writes (INFO is one)

        plain = ArqRedis(aioredis.ConnectionPool.from_url(server.url))
        before = await reads(observer)
        await asyncio.gather(*(plain.incr("counter") for _ in range(200)))
        assert await reads(observer) - before >= 200  # the same commands, one trip each
        for opened in (client, plain):
            await opened.aclose(close_connection_pool=True)
        await observer.aclose()


async def test_a_callers_error_reply_is_its_own(redis: aioredis.Redis) -> None:
    await redis.set("text", "a string")
    results = await asyncio.gather(
        redis.incr("n"), redis.lpush("text", "x"), redis.get("text"), return_exceptions=True
    )
    assert results[0] == 1
    assert isinstance(results[1], ResponseError) and "WRONGTYPE" in str(results[1])
    assert results[2] == b"a string"


async def test_scripts_unknown_to_the_server_are_loaded_for_every_caller(redis: aioredis.Redis) -> None:
    script = redis.register_script("return tonumber(ARGV[1]) * 2")
    await redis.script_flush()
    doubled = await asyncio.gather(*(script(args=[i]) for i in range(50)))  # NOSCRIPT, then loaded
    assert doubled == [2 * i for i in range(50)]


async def test_a_blocking_command_does_not_hold_up_the_others(redis: aioredis.Redis) -> None:
    waiting = asyncio.ensure_future(redis.blpop(["nothing"], timeout=2))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    assert await asyncio.gather(*(redis.set(f"k{i}", i) for i in range(20))) == [True] * 20
    assert time.perf_counter() - started < 1
    await redis.rpush("nothing", "here")
    assert await waiting == (b"nothing", b"here")


async def test_transactions_and_watch_keep_their_own_connection(redis: aioredis.Redis) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch("balance")
        pipe.multi()
        pipe.incrby("balance", 5)
        side = asyncio.ensure_future(redis.incr("other"))  # a shared command meanwhile
        assert await pipe.execute() == [5]
    assert await side == 1


def test_what_may_share_a_connection() -> None:
    assert (
        may_share(("GET", "k"))
        and may_share(("EVALSHA", "abc", 0))
        and may_share(("XREAD", "STREAMS", "s", 0))
    )
    for alone in (("BLPOP", "k", 1), ("WATCH", "k"), ("MULTI",), ("SUBSCRIBE", "c"), ("CLIENT SETNAME", "x")):
        assert not may_share(alone)
    assert not may_share(("XREADGROUP", "GROUP", "g", "c", b"BLOCK", 1000, "STREAMS", "s", ">"))


async def test_a_lost_connection_reaches_every_caller_waiting_and_the_next_command_reconnects() -> None:
    with EmbeddedRedis(protected=False) as server:
        client = queue_client(aioredis.ConnectionPool.from_url(server.url))
        slow = client.register_script(_SLOW)
        await slow(args=[1])  # loaded
        in_flight = asyncio.gather(
            slow(args=[2000]), client.get("k"), client.incr("n"), return_exceptions=True
        )
        await asyncio.sleep(0.3)
        server.kill()
        results = await asyncio.wait_for(in_flight, 10)
        assert all(isinstance(result, RedisConnectionError) for result in results), results
        server.start()
        assert await client.incr("n") == 1
        await client.aclose(close_connection_pool=True)


async def test_a_cancelled_caller_leaves_the_others_their_replies(redis: aioredis.Redis) -> None:
    first, second = asyncio.ensure_future(redis.incr("a")), asyncio.ensure_future(redis.incr("b"))
    await asyncio.sleep(0)  # both queued in this turn
    first.cancel()
    assert await second == 1
    with pytest.raises(asyncio.CancelledError):
        await first
