"""End to end: privileges, /admin, /quota and the community's rules, with the real discord.py client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from arq.connections import ArqRedis

from core.errors import StorageError
from core.governance.audit import AUDIT_STREAM
from core.settings import PrivilegeSettings, QuotaSettings, Settings
from tests.bots.discord.conftest import BotRunner, announce_worker, answer, queue_depth, request_ids
from tests.emulators.discord_api import MANAGE_MESSAGES, DiscordEmulator, Message, UserOption
from tests.settings import with_settings

USER = 4242
OTHER = 5151
MOD = 6001  # has a role with Manage Messages
ADMIN = 6002  # has a role with Manage Server
OWNER = 9000  # a plain member, but an owner in the settings


def roles_of(emulator: DiscordEmulator, user_id: int) -> tuple[int, ...]:
    return {MOD: (emulator.mod_role,), ADMIN: (emulator.admin_role,)}.get(user_id, ())


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The pipeline's settings with an owner, a role giving a tier, a moderators' role, quick auto-bans."""
    return with_settings(
        settings,
        owners=[f"discord:{OWNER}"],
        quotas=QuotaSettings(role_tiers={"Supporters": "supporter"}),
        privileges=PrivilegeSettings(discord_mod_roles=["Helpers"], refusals_before_ban=2),
    )


async def admin(
    emulator: DiscordEmulator,
    subcommand: str,
    options: dict[str, Any] | None = None,
    *,
    user_id: int,
    **where: Any,
) -> Message:
    """Run `/admin <subcommand>` as `user_id` (with their roles) and return the ephemeral answer."""
    roles = roles_of(emulator, user_id) + where.pop("roles", ())
    interaction = await emulator.slash(
        "admin", options, subcommand=subcommand, user_id=user_id, roles=roles, **where
    )
    message = await answer(emulator, interaction)
    assert message.ephemeral
    return message


async def imagine(emulator: DiscordEmulator, prompt: str, user_id: int = USER, **options: Any) -> Message:
    """/imagine of one image; returns the reply once it says something (queued, or why not)."""
    interaction = await emulator.slash("imagine", {"prompt": prompt, "count": 1}, user_id=user_id, **options)
    return await answer(emulator, interaction)


async def audit_entries(redis: ArqRedis) -> list[dict[str, Any]]:
    return [json.loads(fields[b"entry"]) for _, fields in await redis.xrange(AUDIT_STREAM)]


async def actions_by(redis: ArqRedis, user_id: int) -> list[str]:
    return [entry["action"] for entry in await audit_entries(redis) if entry["actor"] == f"discord:{user_id}"]


async def test_a_plain_member_can_neither_ban_nor_cancel_someone_elses_job(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await announce_worker(redis)
    await bots.start()
    assert (await imagine(emulator, "a quiet harbour")).content.startswith("Queued")
    (request_id,) = await request_ids(redis)

    ban = await admin(emulator, "ban", {"user": UserOption(USER)}, user_id=OTHER)
    cancel = await admin(emulator, "cancel", {"request": request_id}, user_id=OTHER)
    own_cancel = await answer(
        emulator, await emulator.slash("cancel", {"request": request_id}, user_id=OTHER)
    )

    assert "Only mods can use /admin ban" in ban.content
    assert "Only mods can use /admin cancel" in cancel.content
    assert own_cancel.ephemeral and "Only the person who asked" in own_cancel.content
    assert await queue_depth(redis) == 1
    assert not await redis.keys("imagebot:ban:*")
    assert await actions_by(redis, OTHER) == ["admin_refused", "admin_refused"]  # refusals are audited too


async def test_a_moderator_bans_and_unbans_and_the_audit_log_shows_both(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await announce_worker(redis)
    await bots.start()

    banned = await admin(
        emulator,
        "ban",
        {"user": UserOption(USER), "duration": "2h", "reason": "for spamming"},
        user_id=MOD,
    )
    refused = await imagine(emulator, "a lighthouse")
    assert f"Banned <@{USER}> here for 2 h 0 min: “for spamming”" in banned.content
    assert refused.ephemeral and "You've been banned" in refused.content and "for spamming" in refused.content
    assert await queue_depth(redis) == 0 and not await request_ids(redis)

    unbanned = await admin(emulator, "unban", {"user": UserOption(USER)}, user_id=MOD)
    assert unbanned.content == f"Unbanned <@{USER}>."
    assert (await imagine(emulator, "a lighthouse")).content.startswith("Queued")
    assert await queue_depth(redis) == 1

    log = await admin(emulator, "audit", {"user": UserOption(USER), "since": "1h"}, user_id=MOD)
    unban_at = log.content.index(f"<@{MOD}> unban <@{USER}>")
    ban_at = log.content.index(f"<@{MOD}> ban <@{USER}> — “for spamming”")
    assert unban_at < ban_at  # newest first
    assert "system banned_user_refused" in log.content
    assert await actions_by(redis, MOD) == ["ban", "unban"]
    community = {e["community"] for e in await audit_entries(redis) if e["actor"] == f"discord:{MOD}"}
    assert community == {f"discord:{emulator.guild_id}"}

    bad = await admin(emulator, "ban", {"user": UserOption(USER), "duration": "2 hours"}, user_id=MOD)
    assert "one word" in bad.content and not await redis.keys("imagebot:ban:*")


async def test_an_owner_from_settings_sets_tiers_quotas_and_policy(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await bots.start()

    not_mod_enough = await admin(
        emulator, "tier", {"user": UserOption(USER), "tier": "supporter"}, user_id=MOD
    )
    tier = await admin(emulator, "tier", {"user": UserOption(USER), "tier": "supporter"}, user_id=OWNER)
    quota = await admin(emulator, "quota", {"user": UserOption(USER), "images": 1}, user_id=OWNER)
    policy = await admin(emulator, "policy nsfw", {"value": "spoiler"}, user_id=OWNER)
    shown = await answer(emulator, await emulator.slash("quota", user_id=USER))

    assert "Only owners can use /admin tier" in not_mod_enough.content  # limits apply everywhere
    assert tier.content == f"<@{USER}> is now on the supporter tier."
    assert quota.content == f"<@{USER}> may now make 1 images a day."
    assert "NSFW spoiler" in policy.content
    assert shown.ephemeral and "Tier: supporter" in shown.content and "Today: 0 of 1 images" in shown.content
    assert await actions_by(redis, OWNER) == ["tier", "quota", "policy"]
    assert await actions_by(redis, MOD) == ["admin_refused"]


async def test_an_owner_bans_everywhere_from_a_dm(bots: BotRunner, discord_emulator: DiscordEmulator) -> None:
    emulator = discord_emulator
    await bots.start()

    mod_in_dm = await admin(emulator, "ban", {"user": UserOption(USER)}, user_id=MOD, guild=False)
    banned = await admin(
        emulator, "ban", {"user": UserOption(USER), "reason": "abuse"}, user_id=OWNER, guild=False
    )
    refused = await imagine(emulator, "a kite")  # in the server
    log = await admin(emulator, "audit", {"action": "ban"}, user_id=OWNER, guild=False)

    assert "Only mods" in mod_in_dm.content  # a DM carries no server permissions
    assert banned.content == f"Banned <@{USER}> everywhere: abuse"
    assert "You've been banned" in refused.content and "abuse" in refused.content
    assert f"<@{OWNER}> ban <@{USER}> — abuse" in log.content


async def test_a_daily_quota_refuses_the_second_imagine_naming_the_limit(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await announce_worker(redis)
    await bots.start()
    set_quota = await admin(emulator, "quota", {"user": UserOption(USER), "images": 1}, user_id=OWNER)
    assert set_quota.content == f"<@{USER}> may now make 1 images a day."

    first = await imagine(emulator, "a red kite")
    second = await imagine(emulator, "a blue kite")
    shown = await answer(emulator, await emulator.slash("quota", user_id=USER))

    assert first.content.startswith("Queued")
    assert second.ephemeral and "used 1 of your 1 images for today" in second.content
    assert "It resets in" in second.content
    assert await queue_depth(redis) == 1
    assert "Today: 1 of 1 images" in shown.content
    assert "quota_refused" in [entry["action"] for entry in await audit_entries(redis)]


async def test_pause_resume_and_blocked_terms(bots: BotRunner, discord_emulator: DiscordEmulator) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    await announce_worker(redis)
    await bots.start()

    in_a_dm = await admin(emulator, "pause", user_id=MOD, guild=False)
    assert "Only mods" in in_a_dm.content  # no server permissions in a DM
    assert "paused here" in (await admin(emulator, "pause", {"reason": "maintenance"}, user_id=MOD)).content
    paused = await imagine(emulator, "a red kite")
    assert paused.ephemeral and "paused in this community" in paused.content
    await admin(emulator, "resume", user_id=MOD)
    assert (await imagine(emulator, "a red kite")).content.startswith("Queued")

    added = await admin(emulator, "block add", {"term": "purple elephant"}, user_id=MOD)
    blocked = await imagine(emulator, "a PURPLE  elephant dancing")
    listed = await admin(emulator, "block list", user_id=MOD)
    removed = await admin(emulator, "block remove", {"term": "purple elephant"}, user_id=MOD)
    allowed = await imagine(emulator, "a purple elephant dancing")

    assert "“purple elephant” are now refused here" in added.content
    assert blocked.ephemeral and "this community has blocked" in blocked.content
    assert "purple elephant" in listed.content
    assert "no longer blocked" in removed.content
    assert allowed.content.startswith("Queued")
    assert await queue_depth(redis) == 2
    assert await actions_by(redis, MOD) == ["admin_refused", "pause", "resume", "block_add", "block_remove"]
    refusals = [e for e in await audit_entries(redis) if e["action"] == "prompt_refused"]
    assert [e["target"] for e in refusals] == [f"discord:{USER}"]


async def test_buttons_for_everyone_let_another_member_vary_and_upscale(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    await bots.pipeline.start_worker()
    await bots.start()
    command = await emulator.slash("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    grid = await emulator.result(command.token, 30)
    request_id = grid.files[0].filename.removesuffix(".png")

    refused = await answer(emulator, await emulator.click(grid, f"ib:v:{request_id}:0", user_id=OTHER))
    assert refused.ephemeral and "Only the person who asked" in refused.content
    policy = await admin(emulator, "policy buttons", {"who": "everyone"}, user_id=ADMIN)
    assert "buttons for everyone" in policy.content

    vary = await emulator.click(grid, f"ib:v:{request_id}:0", user_id=OTHER)
    variation = await emulator.result(vary.token, 30)
    upscale = await emulator.click(grid, f"ib:u:{request_id}:0", user_id=OTHER)
    single = await emulator.result(upscale.token, 20)

    stored = await bots.pipeline.runtime.service.queue.load(variation.files[0].filename.removesuffix(".png"))
    assert (stored.requester.user_id, stored.parent_id, stored.mode) == (str(OTHER), request_id, "variation")
    assert single.files and single.content.startswith("Image 1")


async def test_a_moderator_cancels_a_queued_job_and_deletes_a_result(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    service = bots.pipeline.runtime.service
    await announce_worker(redis)
    await bots.start()
    assert (await imagine(emulator, "a windmill")).content.startswith("Queued")
    (queued_id,) = await request_ids(redis)

    cancelled = await admin(emulator, "cancel", {"request": queued_id}, user_id=MOD)
    assert cancelled.content == f"Cancelled {queued_id} (owner <@{USER}>)."
    assert await queue_depth(redis) == 0
    usage = await admin(emulator, "usage", {"user": UserOption(USER)}, user_id=MOD)
    assert "Today: 0 of 60 images" in usage.content  # refunded

    await bots.pipeline.start_worker()
    command = await emulator.slash("imagine", {"prompt": "a mill", "count": 1}, user_id=USER)
    grid = await emulator.result(command.token, 30)
    request_id = grid.files[0].filename.removesuffix(".png")
    full_size = await emulator.click(grid, f"ib:u:{request_id}:0", user_id=USER)
    shown = await emulator.result(full_size.token, 20)
    result = await service.result(request_id)
    keys = [image.key for image in (*result.images, result.grid, result.preview) if image is not None]

    deleted = await admin(emulator, "delete", {"request": request_id}, user_id=MOD)

    assert f"Deleted {len(keys)} file(s) of {request_id}." in deleted.content
    assert "Removed 2 of 2 message(s)" in deleted.content
    assert grid.deleted and shown.deleted
    for key in keys:
        with pytest.raises(StorageError):
            await service.store.get(key)
    assert await actions_by(redis, MOD) == ["cancel", "delete"]


async def test_manage_messages_in_one_channel_makes_no_moderator(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    """The interaction's permissions include the channel's overwrites; privileges come from the roles."""
    emulator = discord_emulator
    await bots.start()

    overwritten = await admin(emulator, "queue", user_id=OTHER, overwrite=MANAGE_MESSAGES)
    help_text = await answer(emulator, await emulator.slash("help", user_id=OTHER, overwrite=MANAGE_MESSAGES))
    moderator = await admin(emulator, "queue", user_id=MOD)

    assert "Only mods" in overwritten.content
    assert "/admin" not in help_text.content
    assert "gpu: 0 waiting" in moderator.content


async def test_roles_give_a_tier_and_moderation(bots: BotRunner, discord_emulator: DiscordEmulator) -> None:
    emulator = discord_emulator
    supporters = await emulator.add_role("Supporters")
    helpers = await emulator.add_role("Helpers")
    await bots.start()

    supporter = await answer(emulator, await emulator.slash("quota", user_id=USER, roles=(supporters,)))
    plain = await answer(emulator, await emulator.slash("quota", user_id=OTHER))
    helper = await admin(emulator, "queue", user_id=OTHER, roles=(helpers,))

    assert "Tier: supporter" in supporter.content and "Today: 0 of 240 images" in supporter.content
    assert "Tier: free" in plain.content
    assert "gpu: 0 waiting" in helper.content


async def test_repeated_refusals_ban_automatically_and_notify_the_log_channel(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator = discord_emulator
    mods_room = emulator.nsfw_channel_id
    await bots.start()
    await admin(emulator, "block add", {"term": "forbidden thing"}, user_id=MOD)
    here = await admin(emulator, "policy logchannel", {"where": "here"}, user_id=ADMIN, channel_id=mods_room)
    assert "notices to this chat" in here.content

    for _ in range(2):  # refusals_before_ban
        refused = await imagine(emulator, "a forbidden thing")
        assert "this community has blocked" in refused.content
    notices = await emulator.wait_for(lambda: emulator.channel_messages(mods_room), 20)
    banned = await imagine(emulator, "a harmless kite")

    assert f"Automatic ban: user{USER} (discord:{USER}) for 1 h 0 min" in notices[0].content
    assert banned.ephemeral and "You've been banned" in banned.content


async def test_rank_and_roles_of_the_picked_member_count_and_replies_mention_without_pinging(
    bots: BotRunner, discord_emulator: DiscordEmulator
) -> None:
    emulator, redis = discord_emulator, bots.pipeline.runtime.redis
    supporters = await emulator.add_role("Supporters")
    await bots.start()

    the_admin = UserOption(ADMIN, roles=(emulator.admin_role,))
    ban_admin = await admin(emulator, "ban", {"user": the_admin}, user_id=MOD)
    fellow = await admin(
        emulator, "ban", {"user": UserOption(MOD, roles=(emulator.mod_role,))}, user_id=ADMIN
    )
    usage = await admin(emulator, "usage", {"user": UserOption(USER, roles=(supporters,))}, user_id=MOD)

    assert (
        "You can't use /admin ban on someone whose rank here (admin) is as high as yours" in ban_admin.content
    )
    assert fellow.content == f"Banned <@{MOD}> here."  # an admin outranks a moderator
    assert f"imagebot:ban:discord:{emulator.guild_id}:discord:{ADMIN}".encode() not in await redis.keys("*")
    assert usage.content.startswith(f"Usage of <@{USER}>:\nTier: supporter\n")  # the tier their role gives
    (shown,) = [call for call in emulator.calls if call.route == "original" and "Banned" in str(call.payload)]
    assert shown.payload["allowed_mentions"] == {"parse": []}  # the mention shows a name and pings nobody
