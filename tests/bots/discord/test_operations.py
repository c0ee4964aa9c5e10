"""Operations on Discord, end to end with the real discord.py client: /admin stats and /forget."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import PrivilegeSettings, Settings
from tests.bots.discord.conftest import BotRunner, answer
from tests.bots.discord.test_bot import result_of
from tests.emulators.discord_api import DiscordEmulator, Message

USER = 4242
OTHER = 5151
MOD = 6001  # has a role with Manage Messages
OWNER = 9000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"owners": [f"discord:{OWNER}"], "privileges": PrivilegeSettings(refusals_before_ban=0)}
    )


async def admin(
    emulator: DiscordEmulator, subcommand: str, options: dict[str, Any] | None = None, **where: Any
) -> Message:
    interaction = await emulator.slash("admin", options, subcommand=subcommand, **where)
    message = await answer(emulator, interaction)
    assert message.ephemeral
    return message


async def test_stats_show_todays_jobs_stages_refusals_and_busiest_users_by_scope(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    await bots.pipeline.start_worker()
    await bots.start()
    for prompt in ("a lighthouse", "a harbour"):
        command = await emulator.slash("imagine", {"prompt": prompt, "count": 1}, user_id=USER)
        await result_of(emulator, command.token)
    await runtime.admin.execute(
        "block add dragon", _owner_in_guild(emulator)
    )  # a community term, so the next prompt is refused here
    refused = await answer(emulator, await emulator.slash("imagine", {"prompt": "a dragon"}, user_id=OTHER))
    assert refused.ephemeral

    async def stats_text(**where: Any) -> str:
        return (await admin(emulator, "stats", **where)).content

    mod_roles = (emulator.mod_role,)
    text = await _until(lambda: stats_text(user_id=MOD, roles=mod_roles), "delivery: p50")
    assert text.startswith("Stats for this community,")
    assert "Jobs: 2 (2 done, 0 failed, 0 refused, 0 cancelled); 2 images" in text
    for stage in ("queue wait", "model", "store", "delivery"):
        assert f"{stage}: p50 " in text
    assert "Refused: prompt 1" in text
    assert f"Busiest: <@{USER}> 2" in text

    whole = await stats_text(user_id=OWNER, guild=False)
    assert whole.startswith("Stats for the whole bot,") and "Jobs: 2 (2 done" in whole
    refused_stats = await stats_text(user_id=USER)
    assert "Only mods can use /admin stats" in refused_stats


def _owner_in_guild(emulator: DiscordEmulator) -> Any:
    from core.models.privileges import Privilege
    from core.models.request import Platform, Requester

    guild = str(emulator.guild_id)
    return Requester(
        platform=Platform.DISCORD,
        user_id=str(OWNER),
        chat_id=guild,
        community_id=guild,
        privilege=Privilege.OWNER,
    )


async def _until(read: Any, needle: str, attempts: int = 50) -> str:
    """Run `read` until its text contains `needle` (the delivery time lands just after the reply)."""
    import asyncio

    text = ""
    for _ in range(attempts):
        text = await read()
        if needle in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{needle!r} never showed up in: {text}")
