"""Result events on a Redis stream per platform, read through a consumer group.

A bot that restarts picks up what finished while it was down (its group's pending and new entries), and a
delivered marker per (request, terminal kind) keeps every result to one reply even when a worker published it
twice or a crashed consumer's entries are claimed by another.

The guarantee is at-least-once delivery to the handler with duplicates suppressed by the marker: the marker is
set right after the handler returns, so only a crash inside that tiny window can repeat a reply. While a terminal
event is being delivered a lease keeps other consumers off it, even one that claimed the entry because the send
was slow (a 429 storm); the holder renews it while the delivery runs, so a lease outlives a dead holder by at
most `lease_ms` however long a live one's send takes. Entries a dead consumer left unacknowledged are claimed
by a live one after `claim_idle_ms`: with two bot replicas, that is how long a killed one's results wait.

The consumer rides out Redis itself going away: connection errors are retried with backoff (0.5 s doubling to
30 s), and a group that vanished (Redis restarted without persistence, FLUSHALL, a failover to a replica that had
not yet got the group) is recreated with MKSTREAM, from the last entry this consumer saw when that entry is still
on the stream, else from the stream's start; the delivered markers keep a replayed result to one reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import constants as c
from core.claims import RELEASE
from core.delivery.tally import DailyTally
from core.keys import DEAD_EVENTS_STREAM, DELIVERED_KEY, DELIVERED_TTL_S, EVENTS_STREAM, LEASE_SUFFIX
from core.models.request import Platform
from core.models.result import EventKind, ResultEvent
from core.settings import DeliverySettings
from core.tasks import cancel_and_wait, to_the_end

log = logging.getLogger(__name__)

EventHandler = Callable[[ResultEvent], Awaitable[None]]
RETRY_FIRST_S = 0.5  # first wait after Redis failed; it doubles up to RETRY_MAX_S while Redis stays away
RETRY_MAX_S = 30.0
# Extend a lease this consumer still holds.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
ACKNOWLEDGE_TIMEOUT_S = 10.0  # bounds the acknowledgement a stopping consumer still finishes
LEASE_RENEWALS = 3  # a lease is renewed this many times per lease_ms while its delivery runs
STOP_GRACE_S = 5.0  # how long a stopping front end lets the delivery in progress finish (stop_consuming)


def stream_key(platform: Platform | str) -> str:
    return EVENTS_STREAM.format(platform=str(platform))


def default_consumer(platform: Platform | str) -> str:
    """A bot replica's consumer name when none is configured: stable across its restarts on one host."""
    return f"{platform}-{socket.gethostname()}"


def consumer_for(
    redis: Redis,
    platform: Platform | str,
    settings: DeliverySettings,
    name: str | None = None,
    tally: DailyTally | None = None,
) -> EventConsumer:
    """The platform's consumer as IMAGEBOT_DELIVERY__* says (`name` overrides the configured one); `tally`
    counts delivery times for /admin stats."""
    return EventConsumer(
        redis,
        platform,
        name or settings.consumer or default_consumer(platform),
        claim_idle_ms=int(settings.claim_idle_s * 1000),
        lease_ms=int(settings.lease_s * 1000),
        tally=tally,
    )


class EventPublisher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, event: ResultEvent) -> str:
        entry_id = await self.redis.xadd(
            stream_key(event.requester.platform),
            {"event": event.model_dump_json()},
            maxlen=c.EVENTS_MAXLEN,
            approximate=True,
        )
        log.debug("request %s: published %s event %s", event.request_id, event.kind, entry_id)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class EventConsumer:
    """Reads one platform's stream as `consumer` in the shared group and hands events to a handler.

    Use a stable consumer name per bot process (e.g. "telegram-1"): after a restart, the same name finds its own
    unacknowledged entries; entries left by a consumer that never came back are claimed after `claim_idle_ms`.
    An entry delivered more than `max_deliveries` times without success goes to a dead-letter stream.
    """

    def __init__(
        self,
        redis: Redis,
        platform: Platform | str,
        consumer: str,
        *,
        group: str = c.EVENTS_GROUP,
        claim_idle_ms: int = 60_000,
        handler_attempts: int = 3,
        retry_delay_s: float = 1.0,
        max_deliveries: int = 10,
        lease_ms: int = 30_000,
        tally: DailyTally | None = None,
    ) -> None:
        """`tally` counts each delivered result's delivery time in the day's numbers (/admin stats)."""
        self.redis = redis
        self.tally = tally or DailyTally(redis)
        self.platform = str(platform)
        self.stream = stream_key(platform)
        self.consumer = consumer
        self.group = group
        self.claim_idle_ms = claim_idle_ms
        self.handler_attempts = handler_attempts
        self.retry_delay_s = retry_delay_s
        self.max_deliveries = max_deliveries
        self.lease_ms = lease_ms
        # a lease this consumer still holds (it may have lapsed to another)
        self._release = redis.register_script(RELEASE)
        self._renew = redis.register_script(_RENEW)
        self.dead_stream = DEAD_EVENTS_STREAM.format(platform=self.platform)
        self._group_ready = False
        self._backlog_done = False
        self._last_seen: str | None = None  # the newest entry this consumer read, to resume a lost group

    async def ensure_group(self) -> None:
        if self._group_ready:
            return
        await self._create_group("0")
        self._group_ready = True

    async def _create_group(self, start_id: str) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _recreate_group(self) -> None:
        """The group is gone: make it again, resuming after the last entry seen when the stream still has it
        (a failover, a destroyed group), or from the start of a stream that was lost with it (FLUSHALL, a
        restart without persistence), so that nothing published since is missed."""
        start_id = "0"
        if self._last_seen is not None:
            first = await self.redis.xrange(self.stream, min=self._last_seen, max=self._last_seen, count=1)
            if first:
                start_id = self._last_seen
        await self._create_group(start_id)
        log.warning(
            "consumer group %s on %s was missing (Redis restarted or flushed?); recreated from %s",
            self.group,
            self.stream,
            start_id,
        )
        self._group_ready = True

    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes], handler: EventHandler) -> bool:
        self._last_seen = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        try:
            event = ResultEvent.model_validate_json(fields[b"event"])
        except (KeyError, ValueError):
            log.exception("dropping malformed event %s on %s", entry_id, self.stream)
            await self.redis.xack(self.stream, self.group, entry_id)
            return False
        marker = delivered_marker(self.platform, event) if event.terminal else None
        if marker and await self.redis.exists(marker):
            log.info("request %s: %s already delivered; skipping duplicate", event.request_id, event.kind)
            await self.redis.xack(self.stream, self.group, entry_id)
            return False
        if marker and not await self._lease(marker):
            # Another consumer is delivering this very result (a slow send claimed from under it): let it finish.
            log.info("request %s: %s is being delivered by another consumer", event.request_id, event.kind)
            return False
        renewing = asyncio.create_task(self._keep_lease(marker)) if marker else None
        try:
            return await self._deliver(entry_id, event, marker, handler)
        finally:
            if renewing is not None:
                await cancel_and_wait(renewing)  # a cancel of this consumer landing here stops it
            if marker:
                await self._release(keys=[marker + LEASE_SUFFIX], args=[self.consumer])

    async def _keep_lease(self, marker: str) -> None:
        """Renew the lease while the delivery runs; a failed renewal is tried again at the next beat."""
        while True:
            await asyncio.sleep(self.lease_ms / 1000 / LEASE_RENEWALS)
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                await self._renew(keys=[marker + LEASE_SUFFIX], args=[self.consumer, self.lease_ms])

    async def _lease(self, marker: str) -> bool:
        """Take the right to deliver this result; a lease from this consumer's own earlier life is taken over."""
        lease = marker + LEASE_SUFFIX
        if await self.redis.set(lease, self.consumer, nx=True, px=self.lease_ms):
            return True
        holder = await self.redis.get(lease)
        return holder is not None and holder.decode() == self.consumer

    async def _deliver(
        self, entry_id: bytes, event: ResultEvent, marker: str | None, handler: EventHandler
    ) -> bool:
        for attempt in range(1, self.handler_attempts + 1):
            try:
                await handler(event)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "request %s: delivering %s failed (attempt %d/%d)",
                    event.request_id,
                    event.kind,
                    attempt,
                    self.handler_attempts,
                )
                if attempt == self.handler_attempts:
                    return False  # left pending: retried after a restart or by another consumer
                await asyncio.sleep(min(self.retry_delay_s * 2 ** (attempt - 1), 10.0))
        # The reply is out: recording it is finished even if the consumer is cancelled now, or a restart would
        # send it again.
        await to_the_end(self._acknowledge(entry_id, marker))
        if event.terminal and event.kind is not EventKind.NOTICE:
            await self.tally.delivered(event)
        return True

    async def _acknowledge(self, entry_id: bytes, marker: str | None) -> None:
        async with asyncio.timeout(ACKNOWLEDGE_TIMEOUT_S), self.redis.pipeline(transaction=True) as pipe:
            if marker:
                pipe.set(marker, "1", ex=DELIVERED_TTL_S)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()

    async def _claim_abandoned(self, handler: EventHandler, stop: asyncio.Event) -> int:
        handled = 0
        _, claimed, *_ = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=50
        )
        for entry_id, fields in claimed:
            if stop.is_set():
                break
            if not fields:
                continue
            if await self._deliveries(entry_id) > self.max_deliveries:
                await self._dead_letter(entry_id, fields)
                continue
            handled += await self._handle(entry_id, fields, handler)
        return handled

    async def _deliveries(self, entry_id: bytes) -> int:
        pending = await self.redis.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 0

    async def _dead_letter(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        """An event that failed every delivery: park it where operators can look, and stop retrying it."""
        log.error(
            "event %s on %s failed %d deliveries; moved to %s",
            entry_id,
            self.stream,
            self.max_deliveries,
            self.dead_stream,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            parked: dict[Any, Any] = {**fields, b"entry": entry_id}
            pipe.xadd(self.dead_stream, parked, maxlen=c.EVENTS_MAXLEN, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()

    async def read_once(
        self, handler: EventHandler, block_ms: int = 1000, count: int = 20, stop: asyncio.Event | None = None
    ) -> int:
        """Deliver this consumer's backlog (first call), abandoned entries, then new ones. Returns how many.

        Once `stop` is set no further delivery starts and the wait for new entries ends. A missing group is
        recreated (and 0 returned); connection errors propagate to the caller."""
        await self.ensure_group()
        try:
            return await self._read(handler, block_ms, count, stop or asyncio.Event())
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._recreate_group()
            return 0

    async def _read(self, handler: EventHandler, block_ms: int, count: int, stop: asyncio.Event) -> int:
        handled = 0
        if not self._backlog_done:
            response = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=1000)
            for _, entries in response:
                for entry_id, fields in entries:
                    if stop.is_set():  # a stopping consumer starts no new delivery: the rest stay pending
                        return handled
                    if fields:
                        handled += await self._handle(entry_id, fields, handler)
            self._backlog_done = True
        handled += await self._claim_abandoned(handler, stop)
        for _, entries in await self._new_entries(block_ms, count, stop):
            for entry_id, fields in entries:
                if stop.is_set():
                    return handled
                handled += await self._handle(entry_id, fields, handler)
        return handled

    async def _new_entries(self, block_ms: int, count: int, stop: asyncio.Event) -> list[Any]:
        """New entries, waiting up to `block_ms` for some; a stop ends the wait at once (nothing is returned, and
        what Redis handed over as the read was cut short stays pending for this consumer name)."""
        reading = asyncio.ensure_future(
            self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(stopping)
            if not reading.done():
                await cancel_and_wait(reading)
        return [] if reading.cancelled() else list(reading.result() or [])

    async def run(self, handler: EventHandler, stop: asyncio.Event, block_ms: int = 1000) -> None:
        """Deliver events until `stop` is set: the delivery in progress then finishes, and a wait for new entries
        ends at once (see `stop_consuming`). While Redis is unreachable, retry with backoff (logged once per
        outage, and when it is back); other failures are logged with their traceback and retried the same way."""
        delay = 0.0
        while not stop.is_set():
            try:
                await self.read_once(handler, block_ms=block_ms, stop=stop)
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if not delay:
                    log.warning(
                        "Redis is unreachable while reading %s (%s); retrying with backoff", self.stream, exc
                    )
                delay = min(RETRY_MAX_S, delay * 2 or RETRY_FIRST_S)
            except Exception:
                log.exception("reading %s failed; retrying", self.stream)
                delay = min(RETRY_MAX_S, delay * 2 or RETRY_FIRST_S)
            else:
                if delay:
                    log.warning("reading %s again after Redis came back", self.stream)
                delay = 0.0
                continue
            with contextlib.suppress(TimeoutError):  # a stop request cuts the wait short
                await asyncio.wait_for(stop.wait(), delay)


async def stop_consuming(consuming: asyncio.Task[None], stop: asyncio.Event, grace_s: float) -> None:
    """Stop a front end's consumer task (running `EventConsumer.run(…, stop)`): no new result is taken, the
    delivery in progress may finish within `grace_s`, so that a reply is neither cut in half nor sent again after
    a restart (its delivered marker is written); then the task is cancelled (an unfinished result stays pending).
    An idle consumer ends at once: its wait for new entries ends when `stop` is set."""
    stop.set()
    if not consuming.done():  # else it failed, and that error is on its way out already
        await asyncio.wait({consuming}, timeout=grace_s)
        await cancel_and_wait(consuming)


async def follow(
    redis: Redis, platform: Platform | str, after: str = "0-0", block_ms: int = 500
) -> AsyncIterator[ResultEvent]:
    """Every event on a platform's stream after entry `after`, without a consumer group: for watchers that
    acknowledge nothing (the CLI waiting for its own request, benchmarks, tests). Runs until the caller stops."""
    stream = stream_key(platform)
    while True:
        response = await redis.xread({stream: after}, block=block_ms, count=100)
        for _, entries in response or []:
            for entry_id, fields in entries:
                after = entry_id.decode()
                yield ResultEvent.model_validate_json(fields[b"event"])


async def latest_id(redis: Redis, platform: Platform | str) -> str:
    """The id of the newest entry on the platform's stream ("0-0" when empty), to follow only what comes next."""
    last = await redis.xrevrange(stream_key(platform), count=1)
    return last[0][0].decode() if last else "0-0"


def delivered_marker(platform: Platform | str, event: ResultEvent) -> str:
    """The key a platform's consumer sets once it replied with a terminal event: a replay is skipped."""
    return DELIVERED_KEY.format(platform=str(platform), event_id=f"{event.request_id}:{event.kind}")


async def was_delivered(redis: Redis, event: ResultEvent) -> bool:
    """Whether a front end already replied with this terminal event (its consumer's delivered marker)."""
    return bool(await redis.exists(delivered_marker(event.requester.platform, event)))
