"""What governance keeps in Redis as JSON: typed models that still read what earlier versions wrote."""

from __future__ import annotations

import json
import time

import pytest
import redis.asyncio as aioredis

from core.errors import InvalidRequest
from core.governance.audit import AuditAction, AuditEntry, AuditLog
from core.governance.bans import BanList
from core.governance.community import CommunityStore
from core.governance.preferences import PreferenceStore
from core.keys import AUDIT_STREAM, BAN_KEY, POLICY_KEY, PREFS_KEY
from core.models.policy import NsfwPolicy

# Exactly what the dataclass versions stored (json.dumps(asdict(...)) and a hand-built ban payload).
OLD_POLICY = {"nsfw": "spoiler", "buttons": "everyone", "default_model": None, "log_channel": "-1001"}
OLD_PREFS = {"aspect": "16:9", "model": "tiny", "n": 2, "private": True}
OLD_BAN = {"reason": "spam", "by": "telegram:9", "until": None}
OLD_AUDIT = {
    "actor": "telegram:9",
    "action": "ban",
    "target": "telegram:1",
    "reason": "spam",
    "community": "telegram:-100",
    "details": {"duration_s": "0"},
    "at": 1_700_000_000.0,
}


async def test_records_written_before_the_models_read_back_typed(redis: aioredis.Redis) -> None:
    await redis.set(POLICY_KEY.format(community="telegram:-100"), json.dumps(OLD_POLICY))
    await redis.set(PREFS_KEY.format(platform="telegram", user_id="1"), json.dumps(OLD_PREFS))
    await redis.set(BAN_KEY.format(scope="global", owner="telegram:1"), json.dumps(OLD_BAN))
    await redis.xadd(AUDIT_STREAM, {"entry": json.dumps(OLD_AUDIT)})

    policy = await CommunityStore(redis).policy("telegram:-100")
    assert (
        policy.nsfw is NsfwPolicy.SPOILER and policy.buttons == "everyone" and policy.log_channel == "-1001"
    )
    prefs = await PreferenceStore(redis).get("telegram", "1")
    assert (prefs.aspect, prefs.model, prefs.n, prefs.private) == ("16:9", "tiny", 2, True)
    assert prefs.previews and not prefs.remix  # fields that came later: their defaults
    ban = await BanList(redis).get("telegram:1", "telegram:-100")
    assert ban is not None and (ban.scope, ban.reason, ban.by, ban.until) == (
        "global",
        "spam",
        "telegram:9",
        None,
    )
    (entry,) = await AuditLog(redis).read(action="ban")
    assert entry.action is AuditAction.BAN and entry.details == {"duration_s": "0"}
    assert entry.describe().endswith("telegram:9 ban telegram:1 — spam")


async def test_records_written_now_keep_the_same_field_names(redis: aioredis.Redis) -> None:
    """A process still on the previous version reads what this one writes."""
    store = CommunityStore(redis)
    await store.set_policy("telegram:-100", "nsfw", "Allow")
    await store.set_policy("telegram:-100", "logchannel", "-1001")
    assert json.loads(await redis.get(POLICY_KEY.format(community="telegram:-100"))) == {
        "nsfw": "allow",
        "buttons": "owner",
        "default_model": None,
        "log_channel": "-1001",
    }
    await PreferenceStore(redis).update("telegram", "1", aspect="16:9", n=2)
    assert json.loads(await redis.get(PREFS_KEY.format(platform="telegram", user_id="1"))) == {
        "aspect": "16:9",
        "model": None,
        "n": 2,
        "private": False,
    }
    before = time.time()
    await BanList(redis).ban("telegram:1", "spam", by="telegram:9", duration_s=3600)
    stored = json.loads(await redis.get(BAN_KEY.format(scope="global", owner="telegram:1")))
    assert set(stored) == {"reason", "by", "until"} and stored["until"] >= before + 3600
    await AuditLog(redis).record(AuditEntry(actor="system", action=AuditAction.AUTO_BAN, target="telegram:1"))
    (_, fields), *_ = await redis.xrange(AUDIT_STREAM)
    written = json.loads(fields[b"entry"])
    assert written["action"] == "auto_ban"
    assert set(written) == set(OLD_AUDIT) | {"actor_name", "target_name"}  # the names came later


async def test_live_previews_off_is_stored_and_on_writes_the_previous_record(redis: aioredis.Redis) -> None:
    """Live previews came after the first records: a record without them reads as on, off is stored, and on
    again writes exactly what the previous version reads (it forbids unknown fields)."""
    key = PREFS_KEY.format(platform="telegram", user_id="1")
    await redis.set(key, json.dumps(OLD_PREFS))
    store = PreferenceStore(redis)
    assert (await store.get("telegram", "1")).previews

    off = await store.update("telegram", "1", previews=False)
    assert not off.previews and json.loads(await redis.get(key)) == {**OLD_PREFS, "previews": False}
    assert not (await store.get("telegram", "1")).previews and (await store.get("telegram", "1")).n == 2

    await store.update("telegram", "1", previews=True, remix=True)
    assert json.loads(await redis.get(key)) == {**OLD_PREFS, "remix": True}
    await store.update("telegram", "1", remix=False)
    assert json.loads(await redis.get(key)) == OLD_PREFS


async def test_unknown_values_are_refused_not_stored(redis: aioredis.Redis) -> None:
    store = CommunityStore(redis)
    with pytest.raises(InvalidRequest, match="refuse, spoiler, allow, default"):
        await store.set_policy("telegram:-100", "nsfw", "sometimes")
    with pytest.raises(ValueError, match="action"):
        AuditEntry(actor="system", action="shrug")
    with pytest.raises(ValueError, match="colour"):
        await PreferenceStore(redis).update("telegram", "1", colour="blue")
    assert await redis.get(POLICY_KEY.format(community="telegram:-100")) is None
    assert await redis.get(PREFS_KEY.format(platform="telegram", user_id="1")) is None


async def test_an_unreadable_audit_entry_is_skipped_not_fatal(redis: aioredis.Redis) -> None:
    await redis.xadd(AUDIT_STREAM, {"entry": json.dumps({**OLD_AUDIT, "action": "from_the_future"})})
    await AuditLog(redis).record(
        AuditEntry(actor="telegram:9", action=AuditAction.UNBAN, target="telegram:1")
    )
    entries = await AuditLog(redis).read()
    assert [entry.action for entry in entries] == [AuditAction.UNBAN]
