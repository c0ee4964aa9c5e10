"""Automatic pipelining: the commands that concurrent callers send in one turn of the event loop travel together.

A bot answering 500 people at once runs 500 admissions side by side, each a short chain of Redis commands. Sent
one by one, every command costs a connection from the pool, a write, a wake-up and a read: about 60 µs of the
event loop's time here, so 500 × ~20 commands kept the loop busy for a second before the last person heard back.
`AutoPipelined` is the same client with one difference: a command that may share a connection is not sent at once
but queued, and at the end of the current turn of the loop everything queued goes out as one pipeline (one
connection, one write) whose replies are handed back to their callers in order. Each caller still awaits its own
commands one after another, so what one caller sees is exactly what it saw before; what changes is that the 500
callers' next commands share one trip instead of taking 500.

Not queued (sent on their own connection as before): commands that block (BLPOP, XREAD … BLOCK …), that change
the connection's state (WATCH, MULTI, SELECT, SUBSCRIBE, …), and everything on a client pinned to one connection.
Pipelines and transactions (`client.pipeline()`) are unchanged. A reply that is an error (a script's NOSCRIPT, a
WRONGTYPE) goes to its caller alone; a lost connection goes to every caller whose reply had not arrived, as it
would have on their own connections, and the retry policy of the connection applies to those commands only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from arq.connections import ArqRedis
from redis.commands.core import AsyncScript
from redis.connection import HiredisRespSerializer
from redis.exceptions import NoScriptError, ResponseError
from redis.typing import EncodableT, KeyT, ScriptTextT
from redis.utils import HIREDIS_AVAILABLE

_ALONE = frozenset(
    {
        # they block the connection until something happens
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
        # they change (or read) the state of one connection
        "WATCH", "UNWATCH", "MULTI", "EXEC", "DISCARD", "SELECT", "AUTH", "HELLO", "CLIENT", "RESET", "QUIT",
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
        "SHUTDOWN", "DEBUG",
    }
)  # fmt: skip


def may_share(args: tuple[Any, ...]) -> bool:
    """May this command ride in a pipeline with other callers' commands?"""
    name = str(args[0]).split(" ", 1)[0].upper()
    if name in _ALONE:
        return False
    if name in ("XREAD", "XREADGROUP"):
        return not any(arg in ("BLOCK", b"BLOCK") for arg in args)
    return True


_PACK = HiredisRespSerializer() if HIREDIS_AVAILABLE else None


class _Pending:
    __slots__ = ("args", "options", "reply")

    def __init__(self, args: tuple[Any, ...], options: dict[str, Any], reply: asyncio.Future[Any]) -> None:
        self.args, self.options, self.reply = args, options, reply


class AutoPipelined(ArqRedis):
    """An ArqRedis whose commands, issued concurrently in one turn of the event loop, share one pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[_Pending] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._scripts: dict[str | bytes, AsyncScript] = {}

    def register_script(self, script: ScriptTextT) -> AsyncScript:  # type: ignore[override]  # redis-py types
        """The same script object for the same text (callers may register per call: no hashing each time)."""
        text = script if isinstance(script, str | bytes) else bytes(script)
        known = self._scripts.get(text)
        if known is None:
            known = self._scripts[text] = _Script(self, text)
        return known

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.single_connection_client or not may_share(args):
            return await super().execute_command(*args, **options)
        loop = asyncio.get_running_loop()
        pending = _Pending(args, options, loop.create_future())
        self._queued.append(pending)
        if len(self._queued) == 1:
            loop.call_soon(self._send_queued)
        return await pending.reply

    def _send_queued(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        pool = self.connection_pool
        try:
            conn = await pool.get_connection()
        except BaseException as error:  # Redis is down: each caller hears it, as it would have on its own
            _fail(batch, error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        try:
            await conn.retry.call_with_retry(
                lambda: self._exchange(conn, [p for p in batch if not p.reply.done()]),
                lambda error: self._disconnect_raise(conn, error),
            )
        except BaseException as error:
            _fail(batch, error)
            if isinstance(error, asyncio.CancelledError):
                raise
        finally:
            await pool.release(conn)

    async def _exchange(self, conn: Any, batch: list[_Pending]) -> None:
        """One write with every command, then each reply to its caller (an error reply to that caller only)."""
        if not batch:
            return
        if _PACK is not None:  # hiredis packs in C what redis-py's asyncio connection packs in Python
            await conn.send_packed_command(b"".join(_PACK.pack(*p.args)[0] for p in batch))
        else:
            await conn.send_packed_command(conn.pack_commands([p.args for p in batch]))
        for pending in batch:
            try:
                result = await self.parse_response(conn, pending.args[0], **pending.options)
            except ResponseError as error:
                if not pending.reply.done():
                    pending.reply.set_exception(error)
            else:
                if not pending.reply.done():
                    pending.reply.set_result(result)


class _Script(AsyncScript):
    """redis-py's script, called on its own client without asking whether that client is a Pipeline: the
    isinstance check goes through typing's Protocol machinery (the client's bases include one) and cost 6 % of a
    submission's time. Called with another client, it behaves exactly as redis-py's."""

    async def __call__(
        self,
        keys: Sequence[KeyT] | None = None,
        args: Iterable[EncodableT] | None = None,
        client: Any = None,
    ) -> Any:
        if client is not None:
            return await super().__call__(keys, args, client)
        own: Any = self.registered_client  # redis-py types its commands as sync-or-async
        keys = keys or ()
        command = (*keys, *(args or ()))
        try:
            return await own.evalsha(self.sha, len(keys), *command)
        except NoScriptError:  # the server lost its scripts (a restart): load it again
            self.sha = await own.script_load(self.script)
            return await own.evalsha(self.sha, len(keys), *command)


def _fail(batch: list[_Pending], error: BaseException) -> None:
    for pending in batch:
        if not pending.reply.done():
            if isinstance(error, asyncio.CancelledError):
                pending.reply.cancel()
            else:
                pending.reply.set_exception(error)
