"""Quotas, privileges and /admin end to end: the real PTB bot against the emulator, over a real Redis."""

from __future__ import annotations

import json
import re

import pytest
from redis.asyncio import Redis

from core import constants as c
from core.errors import StorageError
from core.governance.audit import AUDIT_STREAM
from core.models.request import Platform, Requester
from tests.bots.telegram.conftest import (
    ALICE,
    ALICE_DM,
    BOB,
    GROUP,
    MONA,
    OLGA,
    TelegramBot,
    User,
    last_request,
)
from tests.emulators.telegram_api import Chat, Sent

CARL = User(1004, "Carl", "carl")  # created GROUP: ADMIN there, nobody bot-wide


async def imagine(bot: TelegramBot, chat: Chat, user: User, prompt: str) -> Sent:
    """`user` asks for `prompt`; the status message once it says queued or why not."""
    asked = await bot.emulator.user_message(chat, user, f"/imagine {prompt}")
    status = await bot.reply_to(chat, asked)
    await bot.emulator.wait_for(lambda: status.shown != "Queued…")
    return status


async def audited(redis: Redis, actor: User) -> list[tuple[str, str]]:
    """(action, target) of the actor's entries in the audit stream, oldest first."""
    entries = [json.loads(fields[b"entry"]) for _, fields in await redis.xrange(AUDIT_STREAM)]
    return [(e["action"], e["target"]) for e in entries if e["actor"] == f"telegram:{actor.id}"]


async def test_a_plain_user_cannot_moderate_and_a_chat_administrator_can(telegram_bot: TelegramBot) -> None:
    bot, emulator, redis = telegram_bot, telegram_bot.emulator, telegram_bot.pipeline.runtime.redis
    emulator.make_admin(GROUP, MONA)
    await bot.announce_idle_worker()
    asked = await emulator.user_message(GROUP, BOB, "/imagine a red fox --n 2")
    bob_status = await bot.reply_to(GROUP, asked, prefix="Queued — position")
    bobs_job = await last_request(bot, BOB)

    refused = await bot.command(GROUP, ALICE, f"/admin ban {BOB.id} spam")
    assert refused.shown == "Only mods can use /admin ban."
    refused = await bot.command(GROUP, ALICE, f"/admin cancel {bobs_job}")
    assert refused.shown == "Only mods can use /admin cancel."
    assert await redis.keys("imagebot:ban:*") == []
    assert await redis.zcard(c.QUEUE_GPU) == 1
    assert await audited(redis, ALICE) == [("admin_refused", "ban"), ("admin_refused", "cancel")]

    # Mona administers the group: she bans Bob by replying to his message, and his next /imagine is refused.
    banned = await bot.command(GROUP, MONA, "/admin ban for 2h spamming", reply_to=asked)
    assert banned.shown == "Banned bob here for 2 h 0 min: spamming"
    status = await imagine(bot, GROUP, BOB, "another fox")
    assert re.fullmatch(
        r"You've been banned from using this bot \(spamming\); it ends in (2 h 0|1 h 59) min\. "
        r"If you think this is a mistake, please ask a moderator\.",
        status.shown,
    )
    assert await redis.zcard(c.QUEUE_GPU) == 1
    unbanned = await bot.command(GROUP, MONA, "/admin unban Bob", mentions={"Bob": BOB})
    assert unbanned.shown == "Unbanned bob."
    assert (await imagine(bot, GROUP, BOB, "a third fox --n 1")).shown.startswith("Queued — position 2")

    queue = await bot.command(GROUP, MONA, "/admin queue")
    assert queue.shown.startswith("gpu: 2 waiting, 1 worker(s)")
    assert "busy-elsewhere: tiny" in queue.shown
    quotas = bot.pipeline.runtime.service.admission.quotas
    bob = Requester(platform=Platform.TELEGRAM, user_id=str(BOB.id), chat_id=str(GROUP.id))
    assert (await quotas.status(bob)).used_today == 3
    cancelled = await bot.command(GROUP, MONA, f"/admin cancel {bobs_job}")
    assert cancelled.shown == f"Cancelled {bobs_job} (owner bob)."
    await emulator.wait_for(lambda: bob_status.shown == "Cancelled by a moderator before it started.")
    assert (await quotas.status(bob)).used_today == 1  # the two images were given back
    assert await redis.zcard(c.QUEUE_GPU) == 1

    audit = await bot.command(
        GROUP, MONA, "/admin audit user this", reply_to=asked
    )  # about Bob, newest first
    assert [line.split(" ", 2)[2] for line in audit.shown.splitlines()] == [
        "mona unban bob",
        "system banned_user_refused bob",
        "mona ban bob — spamming",
    ]
    assert emulator.count("getChatAdministrators") == 1  # asked once, then cached for the group
    assert await audited(redis, MONA) == [
        ("ban", f"telegram:{BOB.id}"),
        ("unban", f"telegram:{BOB.id}"),
        ("cancel", bobs_job),
    ]


async def test_the_owner_sets_tiers_and_quotas_and_a_group_creator_only_its_policy(
    telegram_bot: TelegramBot,
) -> None:
    bot, emulator, redis = telegram_bot, telegram_bot.emulator, telegram_bot.pipeline.runtime.redis
    emulator.make_admin(GROUP, CARL, creator=True)
    await bot.announce_idle_worker()

    # Creating a group makes Carl its ADMIN, but not anyone's quota keeper everywhere.
    refused = await bot.command(GROUP, CARL, f"/admin quota {CARL.id} 1000")
    assert refused.shown == "Only owners can use /admin quota."
    policy = await bot.command(GROUP, CARL, "/admin policy buttons everyone")
    assert "buttons for everyone" in policy.shown

    tier = await bot.command(GROUP, OLGA, f"/admin tier {ALICE.id} supporter")
    assert tier.shown == f"{ALICE.id} is now on the supporter tier."
    quota = await bot.command(GROUP, OLGA, f"/admin quota {ALICE.id} 1")
    assert quota.shown == f"{ALICE.id} may now make 1 images a day."
    policy = await bot.command(GROUP, OLGA, "/admin policy model tiny")
    assert "default model tiny" in policy.shown
    assert await audited(redis, OLGA) == [
        ("tier", f"telegram:{ALICE.id}"),
        ("quota", f"telegram:{ALICE.id}"),
        ("policy", f"telegram:{GROUP.id}"),
    ]

    assert (await imagine(bot, GROUP, ALICE, "a lighthouse --n 1")).shown.startswith("Queued — position 1")
    second = await imagine(bot, GROUP, ALICE, "a harbour --n 1")
    assert second.shown.startswith(
        "You've used 1 of your 1 images for today (supporter tier), so 1 image won't fit (0 left). It resets in "
    )
    assert await redis.zcard(c.QUEUE_GPU) == 1
    usage = await bot.command(ALICE_DM, ALICE, "/quota")
    assert usage.shown.startswith("Your usage and limits:\nTier: supporter\nToday: 1 of 1 images (resets in ")

    help_owner = await bot.command(Chat(OLGA.id), OLGA, "/admin")
    assert "/admin tier <user> <tier|default>" in help_owner.shown and "reply to one of" in help_owner.shown
    help_user = await bot.command(ALICE_DM, ALICE, "/admin")
    assert help_user.shown == "You have no admin commands."


async def test_pause_resume_and_the_communitys_blocked_terms(telegram_bot: TelegramBot) -> None:
    bot, emulator, redis = telegram_bot, telegram_bot.emulator, telegram_bot.pipeline.runtime.redis
    emulator.make_admin(GROUP, MONA)
    await bot.announce_idle_worker()

    paused = await bot.command(GROUP, MONA, "/admin pause")
    assert paused.shown.startswith("Image generation is paused here.")
    status = await imagine(bot, GROUP, ALICE, "a castle")
    assert status.shown == "Image generation is paused in this community by its moderators. Please try later."
    await bot.command(GROUP, MONA, "/admin resume")
    assert (await imagine(bot, GROUP, ALICE, "a castle")).shown.startswith("Queued")

    added = await bot.command(GROUP, MONA, "/admin block add dragon")
    assert added.shown == "Prompts containing “dragon” are now refused here."
    status = await imagine(bot, GROUP, ALICE, "a red D.R.A.G.O.N over hills")
    assert status.shown.startswith("Sorry, your prompt uses a word or phrase this community has blocked.")
    assert (await imagine(bot, Chat(BOB.id), BOB, "a red dragon")).shown.startswith("Queued")  # only there
    listed = await bot.command(GROUP, MONA, "/admin block list")
    assert listed.shown == "Blocked terms here: dragon"
    await bot.command(GROUP, MONA, "/admin block remove dragon")
    assert (await imagine(bot, GROUP, ALICE, "a red dragon over hills")).shown.startswith("Queued")
    assert await redis.zcard(c.QUEUE_GPU) == 3
    assert [action for action, _ in await audited(redis, MONA)] == [
        "pause",
        "resume",
        "block_add",
        "block_remove",
    ]


async def test_delete_removes_the_posted_result_and_its_files(telegram_bot: TelegramBot) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    service = bot.pipeline.runtime.service
    emulator.make_admin(GROUP, MONA)
    await bot.pipeline.start_worker()
    asked = await emulator.user_message(GROUP, ALICE, "/imagine a windmill --n 1")
    photo = await bot.photo_reply(GROUP, asked)
    request_id = await last_request(bot, ALICE)
    result = await service.result(request_id)
    keys = [image.key for image in (*result.images, result.grid, result.preview) if image is not None]
    assert keys and all([await service.store.get(key) for key in keys])

    refused = await bot.command(GROUP, BOB, "/admin delete", reply_to=emulator.bot_message(photo))
    assert refused.shown == "Only mods can use /admin delete."
    assert not photo.deleted

    deleted = await bot.command(GROUP, MONA, "/admin delete", reply_to=emulator.bot_message(photo))
    assert deleted.shown == f"Deleted {len(keys)} file(s) of {request_id}."
    assert photo.deleted
    for key in keys:
        with pytest.raises(StorageError):
            await service.store.get(key)
    assert ("delete", request_id) in await audited(bot.pipeline.runtime.redis, MONA)


async def test_a_long_admin_reply_is_split_to_fit(telegram_bot: TelegramBot) -> None:
    emulator, terms = telegram_bot.emulator, telegram_bot.pipeline.runtime.admin.terms
    stored = [
        await terms.add(f"telegram:{GROUP.id}", f"{colour} {animal} beneath the {place}")
        for colour in ("crimson", "emerald", "sapphire", "golden", "silver")
        for animal in ("tiger", "falcon", "dolphin", "panther", "heron", "badger")
        for place in ("mountains", "waterfall", "lighthouse", "cathedral")
    ]  # 120 terms of about 40 characters: about 5,000 characters to list
    asked = await emulator.user_message(GROUP, OLGA, "/admin block list")

    def replies() -> list[Sent] | None:
        sent = [s for s in emulator.in_chat(GROUP.id) if s.reply_to == asked["message_id"]]
        return sent if len(sent) >= 2 else None

    parts = await emulator.wait_for(replies)
    assert all(len(part.shown) <= 4096 for part in parts)
    listed = " ".join(part.shown for part in parts)
    assert all(term in listed for term in stored)  # nothing lost or cut at the seams


async def test_an_automatic_ban_is_announced_in_the_groups_log_chat(telegram_bot: TelegramBot) -> None:
    bot, emulator = telegram_bot, telegram_bot.emulator
    emulator.make_admin(GROUP, CARL, creator=True)
    await bot.announce_idle_worker()
    await bot.command(GROUP, CARL, "/admin block add dragon")
    reply = await bot.command(GROUP, CARL, "/admin policy logchannel here")
    assert "moderator notices to this chat" in reply.shown
    limit = bot.pipeline.settings.privileges.refusals_before_ban
    for attempt in range(limit):
        await imagine(bot, GROUP, BOB, f"a dragon number {attempt}")
    notice = await emulator.wait_for(
        lambda: next((s for s in emulator.in_chat(GROUP.id) if s.shown.startswith("Automatic ban")), None)
    )
    assert notice.shown.startswith(
        f"Automatic ban: bob (telegram:{BOB.id}) for 1 h 0 min ({limit} refused prompts"
    )
    status = await imagine(bot, GROUP, BOB, "a kitten")
    assert status.shown.startswith("You've been banned from using this bot")


async def test_a_chat_moderator_cannot_ban_its_creator_nor_lift_their_own_ban(
    telegram_bot: TelegramBot,
) -> None:
    bot, emulator, redis = telegram_bot, telegram_bot.emulator, telegram_bot.pipeline.runtime.redis
    emulator.make_admin(GROUP, MONA)  # MOD here
    emulator.make_admin(GROUP, CARL, creator=True)  # ADMIN here
    said = await emulator.user_message(GROUP, CARL, "hello")

    refused = await bot.command(GROUP, MONA, "/admin ban for 2h", reply_to=said)
    banned = await bot.command(GROUP, CARL, f"/admin ban {MONA.id} for 1h")
    own = await bot.command(GROUP, MONA, f"/admin unban {MONA.id}")

    assert refused.shown == (
        "You can't use /admin ban on someone whose rank here (admin) is as high as yours or higher."
    )
    assert banned.shown == "Banned mona here for 1 h 0 min."  # by name, from getChatMember
    assert own.shown == "You can't lift your own ban; another moderator has to."
    assert await redis.keys("imagebot:ban:*") == [
        f"imagebot:ban:telegram:{GROUP.id}:telegram:{MONA.id}".encode()
    ]
