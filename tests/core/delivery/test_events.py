"""Result events over a real Redis stream: restart catch-up, exactly-once delivery, claims, retries."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from core.delivery.events import EventConsumer, EventPublisher, stop_consuming
from core.models.ids import new_request_id
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.cancel_points import CancelPoints
from tests.metrics_scrape import served

REQUESTER = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="10")


def _event(request_id: str, kind: EventKind = EventKind.DONE) -> ResultEvent:
    return ResultEvent(kind=kind, request_id=request_id, requester=REQUESTER, model="tiny")


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.seen: list[tuple[str, EventKind]] = []
        self.fail_times = fail_times
        self.arrived = asyncio.Event()

    async def __call__(self, event: ResultEvent) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("platform down")
        self.seen.append((event.request_id, event.kind))
        self.arrived.set()


async def test_events_published_while_the_bot_was_down_are_delivered_once(redis: aioredis.Redis) -> None:
    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    await consumer.ensure_group()  # the bot ran once before, then went down
    publisher = EventPublisher(redis)
    for request_id in ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"):
        await publisher.publish(_event(request_id))

    recorder = Recorder()
    restarted = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    assert await restarted.read_once(recorder, block_ms=10) == 2
    assert await restarted.read_once(recorder, block_ms=10) == 0
    assert recorder.seen == [("aaaaaaaaaaaaaaaa", EventKind.DONE), ("bbbbbbbbbbbbbbbb", EventKind.DONE)]


async def test_a_terminal_event_published_twice_is_delivered_once(redis: aioredis.Redis) -> None:
    publisher = EventPublisher(redis)
    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    await consumer.ensure_group()
    await publisher.publish(_event("aaaaaaaaaaaaaaaa", EventKind.PROGRESS))
    await publisher.publish(_event("aaaaaaaaaaaaaaaa"))
    await publisher.publish(_event("aaaaaaaaaaaaaaaa"))  # e.g. a worker retried after publishing
    recorder = Recorder()
    await consumer.read_once(recorder, block_ms=10)
    assert recorder.seen == [("aaaaaaaaaaaaaaaa", EventKind.PROGRESS), ("aaaaaaaaaaaaaaaa", EventKind.DONE)]
    assert await redis.xpending(consumer.stream, consumer.group) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_entries_of_a_consumer_that_died_are_claimed_by_another(redis: aioredis.Redis) -> None:
    publisher = EventPublisher(redis)
    dead = EventConsumer(redis, Platform.DISCORD, "discord-old")
    await dead.ensure_group()
    await publisher.publish(
        _event("cccccccccccccccc").model_copy(
            update={"requester": REQUESTER.model_copy(update={"platform": Platform.DISCORD})}
        )
    )

    async def crash(event: ResultEvent) -> None:
        raise asyncio.CancelledError  # the process dies mid-delivery: nothing is acknowledged

    with contextlib.suppress(asyncio.CancelledError):
        await dead.read_once(crash, block_ms=10)
    recorder = Recorder()
    survivor = EventConsumer(redis, Platform.DISCORD, "discord-new", claim_idle_ms=0)
    await survivor.read_once(recorder, block_ms=10)
    assert recorder.seen == [("cccccccccccccccc", EventKind.DONE)]


async def test_a_failing_handler_is_retried_then_left_pending(redis: aioredis.Redis) -> None:
    publisher = EventPublisher(redis)
    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1", handler_attempts=2, retry_delay_s=0.01)
    await consumer.ensure_group()
    await publisher.publish(_event("dddddddddddddddd"))
    flaky = Recorder(fail_times=1)
    assert await consumer.read_once(flaky, block_ms=10) == 1
    assert flaky.seen == [("dddddddddddddddd", EventKind.DONE)]

    await publisher.publish(_event("eeeeeeeeeeeeeeee"))
    down = Recorder(fail_times=5)
    assert await consumer.read_once(down, block_ms=10) == 0
    pending = await redis.xpending(consumer.stream, consumer.group)
    assert pending["pending"] == 1  # kept for the next start, not lost


async def test_an_event_no_delivery_can_handle_ends_in_the_dead_letter_stream(redis: aioredis.Redis) -> None:
    publisher = EventPublisher(redis)
    consumer = EventConsumer(
        redis, Platform.TELEGRAM, "tg-1", claim_idle_ms=0, handler_attempts=1, max_deliveries=3
    )
    await consumer.ensure_group()
    await publisher.publish(_event("ffffffffffffffff"))
    down = Recorder(fail_times=100)
    for _ in range(6):
        await consumer.read_once(down, block_ms=10)
    assert (await redis.xpending(consumer.stream, consumer.group))["pending"] == 0
    dead = await redis.xrange(consumer.dead_stream)
    assert len(dead) == 1
    assert ResultEvent.model_validate_json(dead[0][1][b"event"]).request_id == "ffffffffffffffff"
    assert down.fail_times == 100 - 3  # tried exactly max_deliveries times


async def test_a_slow_delivery_claimed_by_a_second_consumer_is_still_sent_once(redis: aioredis.Redis) -> None:
    publisher = EventPublisher(redis)
    first = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    second = EventConsumer(redis, Platform.TELEGRAM, "tg-2", claim_idle_ms=0)
    await first.ensure_group()
    await second.ensure_group()
    await publisher.publish(_event("gggggggggggggggg"))
    sent: list[str] = []
    started = asyncio.Event()

    async def slow(event: ResultEvent) -> None:  # e.g. waiting out a 429 before the photo goes out
        started.set()
        await asyncio.sleep(0.3)
        sent.append("tg-1")

    async def fast(event: ResultEvent) -> None:
        sent.append("tg-2")

    slow_read = asyncio.create_task(first.read_once(slow, block_ms=10))
    await started.wait()
    await second.read_once(fast, block_ms=10)  # claims the entry, idle for 0 ms, while tg-1 is still sending
    await slow_read
    assert sent == ["tg-1"]
    assert (await redis.xpending(first.stream, first.group))["pending"] == 0
    await second.read_once(fast, block_ms=10)
    assert sent == ["tg-1"]


async def _delivered(recorder: Recorder, request_id: str, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while (request_id, EventKind.DONE) not in recorder.seen:
            recorder.arrived.clear()
            await recorder.arrived.wait()


async def test_a_stopping_consumer_finishes_the_delivery_in_hand_and_starts_no_other(
    redis: aioredis.Redis,
) -> None:
    publisher = EventPublisher(redis)
    sending, release = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    async def slow(event: ResultEvent) -> None:
        sending.set()
        await release.wait()
        sent.append(event.request_id)

    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    await consumer.ensure_group()
    for request_id in ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"):
        await publisher.publish(_event(request_id))
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(slow, stop, block_ms=60_000))
    await asyncio.wait_for(sending.wait(), 10)
    stopping = asyncio.create_task(stop_consuming(running, stop, grace_s=30.0))
    await asyncio.sleep(0.2)
    assert not stopping.done()  # the send in hand is waited for…
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert sent == ["aaaaaaaaaaaaaaaa"]  # …and the second result is left for the next start

    restarted = Recorder()
    assert await EventConsumer(redis, Platform.TELEGRAM, "tg-1").read_once(restarted, block_ms=10) == 1
    assert restarted.seen == [("bbbbbbbbbbbbbbbb", EventKind.DONE)]


async def test_an_idle_consumer_stops_at_once_without_waiting_out_its_read(redis: aioredis.Redis) -> None:
    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(Recorder(), stop, block_ms=60_000))
    await asyncio.sleep(0.3)  # blocked reading the stream, for a minute
    async with asyncio.timeout(5):
        await stop_consuming(running, stop, grace_s=120.0)
    assert running.done() and not running.cancelled()  # it ended by itself, before the grace ran out
    await EventPublisher(redis).publish(_event("cccccccccccccccc"))
    later = Recorder()  # nothing was taken from the stream by the read that was cut short
    assert await EventConsumer(redis, Platform.TELEGRAM, "tg-1").read_once(later, block_ms=10) == 1


async def test_a_running_consumer_delivers_again_after_flushall(redis: aioredis.Redis) -> None:
    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    publisher = EventPublisher(redis)
    recorder, stop = Recorder(), asyncio.Event()
    running = asyncio.create_task(consumer.run(recorder, stop, block_ms=50))
    try:
        await publisher.publish(_event("hhhhhhhhhhhhhhhh"))
        await _delivered(recorder, "hhhhhhhhhhhhhhhh")
        await redis.flushall()  # the stream and its consumer group are gone
        await asyncio.sleep(0.2)
        await publisher.publish(_event("iiiiiiiiiiiiiiii"))
        await _delivered(recorder, "iiiiiiiiiiiiiiii")
        assert recorder.seen == [("hhhhhhhhhhhhhhhh", EventKind.DONE), ("iiiiiiiiiiiiiiii", EventKind.DONE)]
        for _ in range(500):  # acknowledged right after the handler returned
            if not (await redis.xpending(consumer.stream, consumer.group))["pending"]:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the delivered result was never acknowledged")
    finally:
        stop.set()
        await running


async def test_a_lost_group_resumes_after_the_last_entry_seen(redis: aioredis.Redis) -> None:
    """A failover to a replica that has the stream but not the group: nothing already delivered is replayed."""
    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    publisher = EventPublisher(redis)
    await consumer.ensure_group()
    await publisher.publish(_event("jjjjjjjjjjjjjjjj", EventKind.PROGRESS))
    recorder = Recorder()
    await consumer.read_once(recorder, block_ms=10)
    await redis.xgroup_destroy(consumer.stream, consumer.group)
    await publisher.publish(_event("kkkkkkkkkkkkkkkk"))
    for _ in range(3):
        await consumer.read_once(recorder, block_ms=10)
    assert recorder.seen == [("jjjjjjjjjjjjjjjj", EventKind.PROGRESS), ("kkkkkkkkkkkkkkkk", EventKind.DONE)]


async def test_a_consumer_rides_out_a_redis_restart_without_persistence() -> None:
    from cli.redis_server import EmbeddedRedis

    server = EmbeddedRedis().start()
    client = aioredis.Redis.from_url(server.url)
    stop, recorder = asyncio.Event(), Recorder()
    consumer = EventConsumer(client, Platform.TELEGRAM, "tg-1")
    running = asyncio.create_task(consumer.run(recorder, stop, block_ms=50))
    try:
        await EventPublisher(client).publish(_event("llllllllllllllll"))
        await _delivered(recorder, "llllllllllllllll")
        server.stop()  # nothing persisted: the stream and the group are gone for good
        await asyncio.sleep(1.0)  # the consumer meets refused connections meanwhile
        server.start()  # same port
        await EventPublisher(client).publish(_event("mmmmmmmmmmmmmmmm"))
        await _delivered(recorder, "mmmmmmmmmmmmmmmm", within=15)
    finally:
        stop.set()
        await running
        await client.aclose()
        server.stop()


async def test_a_delivered_result_times_the_delivery_stage_on_metrics(redis: aioredis.Redis) -> None:
    consumer = EventConsumer(redis, Platform.TELEGRAM, "tg-1")
    await consumer.ensure_group()
    async with served() as endpoint:
        before = await endpoint.metrics()
        await EventPublisher(redis).publish(_event("hhhhhhhhhhhhhhhh"))
        await EventPublisher(redis).publish(_event("hhhhhhhhhhhhhhhh"))  # published twice, delivered once
        assert await consumer.read_once(Recorder(), block_ms=10) == 1
        after = await endpoint.metrics()
    name = "imagebot_stage_seconds_count"
    assert after.value(name, stage="delivery") - before.value(name, stage="delivery") == 1


async def test_a_consumer_cancelled_at_any_await_stops_and_every_result_still_arrives_once(
    redis: aioredis.Redis,
) -> None:
    """Wherever a cancel lands in a delivery (reading, the lease, the handler, the acknowledgement, stopping the
    lease's renewal), the consumer stops. A cancel landing while it stopped the renewal used to be swallowed:
    the consumer went on consuming, and a bot waiting for it to end never stopped (nor stopped polling).
    A result a cancelled consumer did not finish is delivered later, once."""
    publisher = EventPublisher(redis)
    recorder = Recorder()

    async def handler(event: ResultEvent) -> None:
        await asyncio.sleep(0)  # an await inside the delivery too
        await recorder(event)

    def consumer(name: str, claim_idle_ms: int = 60_000) -> EventConsumer:
        return EventConsumer(redis, Platform.TELEGRAM, name, lease_ms=300, claim_idle_ms=claim_idle_ms)

    with CancelPoints(EventConsumer.run) as points:
        # One delivery from start to idle, uncancelled: how many awaits a sweep has to cover.
        first, stop = _event(new_request_id()), asyncio.Event()
        await publisher.publish(first)
        start = points.suspensions
        running = asyncio.create_task(consumer("tg-0").run(handler, stop, block_ms=20))
        await _delivered(recorder, first.request_id)
        awaits = points.suspensions - start + 10  # and a few reads of an idle consumer
        stop.set()
        await running
        for n in range(1, awaits + 1):
            await publisher.publish(_event(new_request_id()))
            running = asyncio.create_task(consumer(f"tg-{n}").run(handler, asyncio.Event(), block_ms=20))
            points.cancel_at(running, n)
            done, _ = await asyncio.wait({running}, timeout=5)
            assert done, f"a consumer cancelled at its await #{n} went on consuming"
            assert running.cancelled()
    await asyncio.sleep(0.4)  # the leases the cancelled consumers held lapse
    final = consumer("tg-final", claim_idle_ms=0)  # claims what the cancelled ones left
    entries = await redis.xrange(final.stream)
    published = {ResultEvent.model_validate_json(fields[b"event"]).request_id for _, fields in entries}
    async with asyncio.timeout(10):
        while {seen for seen, _ in recorder.seen} != published:
            await final.read_once(handler, block_ms=20)
    assert sorted(seen for seen, _ in recorder.seen) == sorted(published)  # none lost, none twice
