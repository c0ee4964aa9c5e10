"""The bot against a flaky Discord: a dropped gateway, sharding, bursts of progress, and global rate limits.

No worker renders here: a worker's heartbeat is announced so jobs are accepted and wait in the queue, and the
test publishes the worker's events itself (core.delivery.events.EventPublisher) when it wants them.
"""

from __future__ import annotations

import asyncio
import itertools

from arq.connections import ArqRedis

from core import constants as c
from core.delivery.events import EventPublisher, stream_key
from core.models.request import GenerationRequest, Platform
from core.models.result import EventKind, ResultEvent
from tests.bots.discord.conftest import (
    BotRunner,
    announce_worker,
    answer,
    done,
    edits,
    queue_depth,
    queued,
)
from tests.emulators.discord_api import DiscordEmulator, Message

USER = 4242


def progress(request: GenerationRequest, step: int, total: int) -> ResultEvent:
    return ResultEvent(
        kind=EventKind.PROGRESS,
        request_id=request.request_id,
        requester=request.requester,
        reply_to=request.reply_to,
        step=step,
        total_steps=total,
    )


async def result_of(emulator: DiscordEmulator, token: str) -> Message:
    return await emulator.result(token, 20)


async def handled(redis: ArqRedis, entry_id: str, within_s: float = 10) -> None:
    """Wait until the bot's consumer has read the stream up to `entry_id` and acknowledged all of it."""
    stream = stream_key(Platform.DISCORD)
    async with asyncio.timeout(within_s):
        while True:
            groups = {g["name"].decode(): g for g in await redis.xinfo_groups(stream)}
            group = groups.get(c.EVENTS_GROUP)
            if group and group["last-delivered-id"].decode() == entry_id and group["pending"] == 0:
                return
            await asyncio.sleep(0.02)


async def test_a_dropped_gateway_resumes_and_results_still_arrive_once(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    runtime = bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a lighthouse", "count": 1}, user_id=USER)
    request = await queued(bots, command)

    # Discord drops the connection and the bot cannot get back in for now.
    attempts = emulator.gateway_attempts
    await emulator.drop_gateway(hold=True)
    await emulator.wait_for(lambda: emulator.gateway_attempts > attempts and not emulator._sockets)

    # The worker finishes meanwhile: the result goes out over REST, gateway or not.
    await EventPublisher(runtime.redis).publish(await done(runtime.service, request))
    grid = await result_of(emulator, command.token)
    assert not emulator._sockets  # still disconnected when it landed

    emulator.reopen_gateway()
    await emulator.wait_for(lambda: emulator.resumes == 1 and emulator._sockets, within_s=30)
    assert emulator.identifies == 1  # resumed the session, no second IDENTIFY…
    assert emulator.gateway_paths[0] == "/gateway"
    assert set(emulator.gateway_paths[1:]) == {"/gateway-resume"}  # …on READY's resume_gateway_url

    # An interaction that arrives on the resumed session is handled.
    again = await emulator.slash("imagine", {"prompt": "a lighthouse at noon", "count": 1}, user_id=USER)
    assert (await queued(bots, again)).prompt == "a lighthouse at noon"

    # The result was delivered exactly once (one edit with the image), and the consumer has nothing pending.
    assert len([call for call in edits(emulator, command.token) if call.files]) == 1
    assert grid.custom_ids() and await queue_depth(runtime.redis) == 2  # the DONE was published by hand
    pending = await runtime.redis.xpending(stream_key(Platform.DISCORD), c.EVENTS_GROUP)
    assert pending["pending"] == 0


async def test_sharded_bot_answers_commands_on_both_shards(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    emulator.shards = 2
    await announce_worker(bots.pipeline.runtime.redis)
    await bots.start(sharded=True)

    assert sorted(emulator.identified_shards) == [(0, 2), (1, 2)]
    assert [call.path for call in emulator.calls if call.path == "/gateway/bot"] == ["/gateway/bot"]
    for shard in (0, 1):
        command = await emulator.slash(
            "imagine", {"prompt": f"a tower on shard {shard}", "count": 1}, user_id=USER, shard=shard
        )
        request = await queued(bots, command)
        assert emulator.calls_for(command.token)[0].payload["type"] == 5  # deferred at once
        assert request.requester.community_id == str(emulator.guild_id)
    assert await queue_depth(bots.pipeline.runtime.redis) == 2


async def test_a_burst_of_progress_edits_the_reply_once_per_interval(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    runtime = bots.pipeline.runtime
    interval = 0.8
    await announce_worker(runtime.redis)
    await bots.start(progress_interval_s=interval)
    command = await emulator.slash("imagine", {"prompt": "a windmill", "count": 1}, user_id=USER)
    request = await queued(bots, command)
    before = len(edits(emulator, command.token))
    publisher = EventPublisher(runtime.redis)

    for step in range(1, 21):
        await publisher.publish(progress(request, step, 20))
    # The newest step is shown once the interval is over, not left behind at the first one.
    await emulator.wait_for(
        lambda: (m := emulator.original(command.token)) and m.content == "Rendering… 100%", within_s=20
    )

    shown = edits(emulator, command.token)[before:]
    assert 1 < len(shown) < 20
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(shown)]
    assert min(gaps) >= interval - 0.25, gaps  # at most one edit per interval, give or take HTTP jitter

    # A burst right before the result: the result is what stays, no progress edit lands after it.
    for step in range(1, 6):
        await publisher.publish(progress(request, step, 5))
    await publisher.publish(await done(runtime.service, request))
    grid = await result_of(emulator, command.token)
    await asyncio.sleep(interval * 1.5)  # any progress edit still waiting would have landed by now
    last = edits(emulator, command.token)[-1]
    assert last.files and grid.content.startswith("a windmill") and grid.files


async def test_progress_that_arrives_after_the_result_leaves_the_result_alone(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    runtime = bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start(progress_interval_s=0.0)
    command = await emulator.slash("imagine", {"prompt": "a harbour", "count": 1}, user_id=USER)
    request = await queued(bots, command)
    publisher = EventPublisher(runtime.redis)
    await publisher.publish(await done(runtime.service, request))
    grid = await result_of(emulator, command.token)
    caption, before = grid.content, len(edits(emulator, command.token))

    # The job timed out but its render thread went on: its progress comes after the result was shown.
    late = await publisher.publish(progress(request, 19, 20))
    await handled(runtime.redis, late)

    shown = emulator.original(command.token)
    assert shown is not None and shown.content == caption and shown.files
    assert len(edits(emulator, command.token)) == before


async def test_global_rate_limits_on_the_callback_and_follow_up_lose_no_reply(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await announce_worker(bots.pipeline.runtime.redis)
    await bots.start()

    emulator.rate_limit("callback", times=1, retry_after=0.2, is_global=True)
    command = await emulator.slash("imagine", {"prompt": "a kite", "count": 1}, user_id=USER)
    await queued(bots, command)
    assert [call.route for call in emulator.rejected] == ["callback"]
    assert [call.payload["type"] for call in emulator.calls_for(command.token, "callback")] == [5]

    emulator.rate_limit("followup", times=2, retry_after=0.2, is_global=True)
    # Refused after the reply was deferred (no worker draws sd15): the notice is a follow-up.
    invalid = await emulator.slash("imagine", {"prompt": "a cat", "model": "sd15"}, user_id=USER)
    notice = await answer(emulator, invalid)
    assert notice.ephemeral and "sd15" in notice.content
    assert [call.route for call in emulator.rejected] == ["callback", "followup", "followup"]
    assert len(emulator.followups(invalid.token)) == 1
