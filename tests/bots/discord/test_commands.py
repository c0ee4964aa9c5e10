"""End to end: what the slash commands refuse, and when: before anything is shown to the channel."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import ArqRedis

from bots.discord import run_discord_bot
from core import constants as c
from core.commands.grammar import MAX_GUIDANCE, MAX_SEED, MAX_STRENGTH, MIN_STRENGTH
from core.jobs.workers import WorkerInfo, WorkerRegistry
from tests.bots.discord.conftest import (
    BotRunner,
    announce_worker,
    answer,
    discord_settings,
    png,
    queue_depth,
    request_ids,
)
from tests.emulators.discord_api import EPHEMERAL, DiscordEmulator, Interaction, Message, UserOption

USER = 4242
ADMIN = 6002


async def run_admin(emulator: DiscordEmulator, subcommand: str, options: dict[str, Any]) -> Message:
    interaction = await emulator.slash(
        "admin", options, subcommand=subcommand, user_id=ADMIN, roles=(emulator.admin_role,)
    )
    return await answer(emulator, interaction)


def refused_privately_at_once(emulator: DiscordEmulator, interaction: Interaction) -> bool:
    """The interaction's one answer is an ephemeral message: no public "thinking…" came before it."""
    callbacks = emulator.calls_for(interaction.token, "callback")
    answers = [(call.payload["type"], (call.payload.get("data") or {}).get("flags", 0)) for call in callbacks]
    return answers == [(4, EPHEMERAL)]


async def test_a_refused_imagine_is_never_shown_to_the_channel_as_thinking(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await announce_worker(redis)
    await bots.start()
    await run_admin(emulator, "block add", {"term": "dragon"})

    bad_value = await emulator.slash("imagine", {"prompt": "a cat --steps 999"}, user_id=USER)
    blocked = await emulator.slash("imagine", {"prompt": "a red dragon"}, user_id=USER)
    for interaction, says in ((bad_value, "--steps"), (blocked, "blocked")):
        notice = await answer(emulator, interaction)
        assert says in notice.content and refused_privately_at_once(emulator, interaction), notice.content

    await run_admin(emulator, "ban", {"user": UserOption(USER)})
    banned = await emulator.slash("imagine", {"prompt": "a calm lake"}, user_id=USER)
    assert "banned" in (await answer(emulator, banned)).content.lower()
    assert refused_privately_at_once(emulator, banned)
    assert await request_ids(redis) == set() and await queue_depth(redis) == 0


async def test_typed_options_are_checked_like_flags_and_declare_their_ranges(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    settings = discord_settings(runtime.settings, emulator)
    await asyncio.wait_for(run_discord_bot(settings, runtime.service, runtime.redis, sync=True), 10)
    imagine = next(command for command in emulator.commands["global"] if command["name"] == "imagine")
    ranges = {o["name"]: (o.get("min_value"), o.get("max_value")) for o in imagine["options"]}
    assert ranges["count"] == (1, 4) and ranges["seed"] == (0, MAX_SEED)
    assert ranges["steps"][0] == 1 and ranges["guidance"] == (0, MAX_GUIDANCE)
    vary = next(command for command in emulator.commands["global"] if command["name"] == "vary")
    strength = next(option for option in vary["options"] if option["name"] == "strength")
    assert (strength["min_value"], strength["max_value"]) == (MIN_STRENGTH, MAX_STRENGTH)

    await announce_worker(runtime.redis)
    await bots.start()
    # What a client that ignores the ranges sends gets what the same --flags get.
    for option, value, flag in (
        ("count", 9, "--count"),
        ("seed", -1, "--seed"),
        ("steps", 0, "--steps"),
        ("guidance", 1000.0, "--guidance"),
    ):
        typed = await emulator.slash("imagine", {"prompt": "a cat", option: value}, user_id=USER)
        notice = await answer(emulator, typed)
        assert notice.ephemeral and flag in notice.content, notice.content
    assert await request_ids(runtime.redis) == set()


async def announce(redis: ArqRedis, model: str) -> None:
    await WorkerRegistry(redis).beat(WorkerInfo(f"{model}-worker", c.QUEUE_GPU, (model,), started_at=0.0))


async def test_upscale_checks_the_size_against_the_model_the_server_picks(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    """tiny (the bot's default) draws up to 512 px a side, sd15 (this server's policy) up to 1024."""
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await announce(runtime.redis, "sd15")
    await bots.start()
    await run_admin(emulator, "policy model", {"name": "sd15"})

    fits = emulator.add_attachment("photo.png", png(400, 300))
    upscale = await emulator.slash("upscale", {}, attachments={"image": fits}, user_id=USER)
    assert (await answer(emulator, upscale)).content.startswith("Queued")
    (request_id,) = await request_ids(runtime.redis)
    stored = await runtime.service.queue.load(request_id)
    assert (stored.model, stored.width, stored.height, stored.mode) == ("sd15", 800, 600, "img2img")

    too_large = emulator.add_attachment("big.png", png(600, 600))
    refused = await emulator.slash("upscale", {}, attachments={"image": too_large}, user_id=USER)
    notice = await answer(emulator, refused)
    assert (
        notice.ephemeral
        and "600×600" in notice.content
        and "sd15 can draw (1024 px a side)" in notice.content
    )
    assert refused_privately_at_once(emulator, refused)
