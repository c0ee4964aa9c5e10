"""Operations on Discord, end to end with the real discord.py client: /admin stats and /forget."""

from __future__ import annotations

from typing import Any

import pytest

from core.delivery.result_store import stored_keys
from core.errors import StorageError
from core.keys import AUDIT_STREAM, REQUEST_KEY
from core.settings import PrivilegeSettings, Settings
from tests.bots.discord.conftest import BotRunner, answer
from tests.bots.discord.test_bot import result_of
from tests.emulators.discord_api import DiscordEmulator, Message
from tests.settings import with_settings

USER = 4242
OTHER = 5151
MOD = 6001  # has a role with Manage Messages
OWNER = 9000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(
        settings, owners=[f"discord:{OWNER}"], privileges=PrivilegeSettings(refusals_before_ban=0)
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


async def test_forget_asks_first_then_removes_the_users_data_and_their_posted_results(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, runtime = discord_emulator, bots.pipeline.runtime
    redis, store = runtime.redis, runtime.service.store
    await bots.pipeline.start_worker()
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a secret garden", "count": 2}, user_id=USER)
    grid = await result_of(emulator, command.token)
    request_id = grid.files[0].filename.removesuffix(".png")
    files = stored_keys(await runtime.service.result(request_id))
    others = await emulator.slash("imagine", {"prompt": "a harbour", "count": 1}, user_id=OTHER)
    await result_of(emulator, others.token)

    offer = await answer(emulator, await emulator.slash("forget", user_id=USER))
    assert offer.ephemeral and offer.content.startswith("This deletes what I keep about you: 1 request(s)")
    confirm = next(i for i in offer.custom_ids() if i.startswith("fg:y:"))
    assert any(i.startswith("fg:n:") for i in offer.custom_ids())  # "Keep my data"
    refused = await emulator.click(offer, confirm, user_id=OTHER)
    notice = await answer(emulator, refused)
    assert notice.ephemeral and "Only the person who asked to be forgotten" in notice.content
    assert await runtime.service.result(request_id)

    pressed = await emulator.click(offer, confirm, user_id=USER)
    done = await emulator.wait_for(lambda: (f := emulator.followups(pressed.token)) and f[0], within_s=20)
    assert done.ephemeral and done.content.startswith("Done — I've forgotten you.")
    assert "• 1 request(s) and 1 result(s)" in done.content
    assert f"• {len(files)} stored image(s)" in done.content
    assert "• 1 of 1 posted result message(s)" in done.content
    assert offer.content == "Forgetting you…" and not offer.custom_ids()
    assert grid.deleted
    for key in files:
        with pytest.raises(StorageError):
            await store.get(key)
    assert not await redis.exists(REQUEST_KEY.format(request_id=request_id))
    entries = [fields[b"entry"].decode() for _, fields in await redis.xrange(AUDIT_STREAM)]
    assert not any(f"discord:{USER}" in entry or "secret garden" in entry for entry in entries)
    assert any(f"discord:{OTHER}" in entry for entry in entries)

    second = await answer(emulator, await emulator.slash("forget", user_id=USER))
    assert second.content.startswith("This deletes what I keep about you: 0 request(s)")
    keep = next(i for i in second.custom_ids() if i.startswith("fg:n:"))
    await emulator.click(second, keep, user_id=USER)
    await emulator.wait_for(lambda: second.content.startswith("Nothing was deleted"))
