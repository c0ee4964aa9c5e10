"""End to end: where results go and what they carry: interaction tokens kept only while they live, mentions
that never ping anyone but the requester, and no stale "Queued" reply left behind."""

from __future__ import annotations

from arq.connections import ArqRedis

from core.delivery.events import EventPublisher
from core.keys import DISCORD_TOKEN_KEY
from tests.bots.discord.conftest import BotRunner, announce_worker, done, queued
from tests.emulators.discord_api import DiscordEmulator, Message

USER = 4242
OTHER = 5151
TOKEN_TTL_S = 15 * 60


async def keys_holding(redis: ArqRedis, text: str) -> set[str]:
    """Every Redis key whose value (of any type) contains `text`."""
    needle = text.encode()
    found: set[str] = set()
    async for raw_key in redis.scan_iter("*"):
        key = raw_key.decode()
        kind = (await redis.type(key)).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [await redis.get(key) or b""]
        elif kind == "hash":
            values = [*(await redis.hgetall(key)).values()]  # type: ignore[misc]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)  # type: ignore[misc]
        elif kind == "set":
            values = [*(await redis.smembers(key))]  # type: ignore[misc]
        elif kind == "zset":
            values = await redis.zrange(key, 0, -1)
        elif kind == "stream":
            values = [v for _, fields in await redis.xrange(key) for v in fields.values()]
        if any(needle in value for value in values):
            found.add(key)
    return found


def token_key(interaction_id: int) -> str:
    return DISCORD_TOKEN_KEY.format(interaction_id=interaction_id)


async def result_of(emulator: DiscordEmulator, token: str) -> Message:
    return await emulator.result(token, 30)


async def test_interaction_tokens_live_only_under_their_own_key_for_15_minutes(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await bots.pipeline.start_worker()
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a lighthouse", "seed": 3}, user_id=USER)
    grid = await result_of(emulator, command.token)
    request_id = grid.files[0].filename.removesuffix(".png")
    full_size = await emulator.click(grid, f"ib:u:{request_id}:1", user_id=USER)
    await result_of(emulator, full_size.token)
    again = await emulator.slash("imagine", {"prompt": "a lighthouse", "seed": 3}, user_id=USER)
    await result_of(emulator, again.token)  # from the result cache

    for interaction in (command, full_size, again):
        # Not in the stored request, result, cache entry, event stream or delivery log: only its own key.
        assert await keys_holding(redis, interaction.token) == {token_key(interaction.id)}
        assert 0 < await redis.ttl(token_key(interaction.id)) <= TOKEN_TTL_S


async def test_once_the_token_expired_the_result_is_posted_and_the_stale_reply_removed(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a mill", "count": 1}, user_id=USER)
    request = await queued(bots, command)

    await runtime.redis.delete(token_key(command.id))  # what Redis does 15 minutes after the command
    await EventPublisher(runtime.redis).publish(await done(runtime.service, request))
    posted = await emulator.wait_for(lambda: emulator.channel_messages(emulator.channel_id), within_s=20)

    assert posted[0].content.startswith(f"<@{USER}> a mill") and posted[0].files
    stale = await emulator.wait_for(lambda: (m := emulator.original(command.token)) and m.deleted and m, 10)
    assert stale.content.startswith("Queued")  # the reply that said so is gone
    assert not [call for call in emulator.calls_for(command.token, "original") if call.files]


async def test_a_stale_queued_reply_is_removed_when_the_result_comes_after_a_restart(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await announce_worker(runtime.redis)
    first = await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a harbour", "count": 1}, user_id=USER)
    request = await queued(bots, command)
    await bots.stop(first)

    await bots.start(token_lifetime_s=0.0)  # back after the interaction's token has expired
    await EventPublisher(runtime.redis).publish(await done(runtime.service, request))
    posted = await emulator.wait_for(lambda: emulator.channel_messages(emulator.channel_id), within_s=20)

    assert posted[0].files
    # No "Queued — position 1" left behind forever.
    await emulator.wait_for(lambda: (m := emulator.original(command.token)) and m.deleted, 10)


async def test_echoed_prompts_ping_nobody_but_the_requester(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    prompt = f"a portrait of <@{OTHER}> for @everyone and <@&{emulator.mod_role}>"
    await announce_worker(runtime.redis)
    await bots.start()
    edited = await emulator.slash("imagine", {"prompt": prompt, "count": 1}, user_id=USER)
    posted = await emulator.slash("imagine", {"prompt": prompt + " again", "count": 1}, user_id=USER)
    requests = [await queued(bots, edited), await queued(bots, posted)]
    await runtime.redis.delete(token_key(posted.id))  # this one is posted anew, with a mention

    publisher = EventPublisher(runtime.redis)
    for request in requests:
        await publisher.publish(await done(runtime.service, request))
    reply = await result_of(emulator, edited.token)
    (anew,) = await emulator.wait_for(lambda: emulator.channel_messages(emulator.channel_id), within_s=20)

    assert f"<@{OTHER}>" in reply.content and "@everyone" in reply.content  # the prompt is shown as written…
    assert reply.pinged == set()  # …and notifies nobody
    assert anew.content.startswith(f"<@{USER}> a portrait of <@{OTHER}>")
    assert anew.pinged == {f"user:{USER}"}
    assert all(m.pinged <= {f"user:{USER}"} for m in emulator.messages.values())


async def test_a_result_of_a_request_stored_with_its_token_is_still_delivered(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    """Requests queued before tokens moved to their own key carry the token in reply_to: their results are
    posted anew (the token is never read back from stored data), not dropped."""
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await announce_worker(runtime.redis)
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "an old mill", "count": 1}, user_id=USER)
    request = await queued(bots, command)
    legacy = {k: v for k, v in request.reply_to.items() if k != "interaction_id"} | {"token": command.token}

    event = (await done(runtime.service, request)).model_copy(update={"reply_to": legacy})
    await EventPublisher(runtime.redis).publish(event)
    posted = await emulator.wait_for(lambda: emulator.channel_messages(emulator.channel_id), within_s=20)

    assert posted[0].content.startswith(f"<@{USER}> an old mill") and posted[0].files
    await emulator.wait_for(lambda: (m := emulator.original(command.token)) and m.deleted, 10)
