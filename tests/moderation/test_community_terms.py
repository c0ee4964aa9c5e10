"""CommunityBlocklist against a real Redis: what admins add is stored normalised, per community."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from core.errors import InvalidRequest
from moderation.blocklist import Match
from moderation.community_terms import MAX_TERMS, CommunityBlocklist


async def test_terms_are_stored_normalised_in_one_set_per_community(redis: aioredis.Redis) -> None:
    community = CommunityBlocklist(redis)
    assert await community.add("guild-1", "  Spoilers!! ") == "spoilers"
    assert await community.add("guild-1", "Ｔｈｅ Ending") == "the ending"
    assert await community.add("guild-1", "spoilers") == "spoilers"  # twice is harmless
    await community.add("guild-2", "clowns")
    assert await redis.smembers("imagebot:blocklist:guild-1") == {b"spoilers", b"the ending"}  # type: ignore[misc]
    assert await community.list("guild-1") == ["spoilers", "the ending"]
    assert await community.list("guild-2") == ["clowns"]
    assert await community.list("guild-3") == []


async def test_remove_reports_whether_the_term_was_there(redis: aioredis.Redis) -> None:
    community = CommunityBlocklist(redis)
    await community.add("guild-1", "spoilers")
    assert await community.remove("guild-1", "SPOILERS") is True
    assert await community.remove("guild-1", "spoilers") is False
    assert await community.list("guild-1") == []


@pytest.mark.parametrize(
    ("term", "says"),
    [
        ("", "no letters"),
        ("!!! ...", "no letters"),
        ("x", "too short"),
        ("abcdefghij" * 7, "too long"),
        ("one two three four five six seven", "at most 6 words"),
    ],
)
async def test_bad_terms_are_rejected_with_a_message_saying_what_to_change(
    redis: aioredis.Redis, term: str, says: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await CommunityBlocklist(redis).add("guild-1", term)
    assert caught.value.field == "term"
    assert says in caught.value.message
    assert await redis.exists("imagebot:blocklist:guild-1") == 0


async def test_a_community_cannot_block_more_than_the_cap(redis: aioredis.Redis) -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    terms = [f"term{letters[i // 26]}{letters[i % 26]}" for i in range(MAX_TERMS)]
    await redis.sadd("imagebot:blocklist:guild-1", *terms)  # type: ignore[misc]
    community = CommunityBlocklist(redis)
    with pytest.raises(InvalidRequest, match="remove some"):
        await community.add("guild-1", "one more")
    assert await community.add("guild-1", "TERMAB") == "termab"  # already there: still fine
    assert await redis.scard("imagebot:blocklist:guild-1") == MAX_TERMS  # type: ignore[misc]


async def test_a_missing_community_id_is_rejected(redis: aioredis.Redis) -> None:
    with pytest.raises(InvalidRequest, match="inside a server or group") as caught:
        await CommunityBlocklist(redis).add("", "spoilers")
    assert caught.value.field == "community_id"


async def test_blocklist_follows_changes_made_by_another_process(redis: aioredis.Redis) -> None:
    ours, theirs = CommunityBlocklist(redis), CommunityBlocklist(redis)
    assert await ours.blocklist("guild-1") is None
    await theirs.add("guild-1", "spoilers")
    first = await ours.blocklist("guild-1")
    assert first is not None
    assert first.match("no sp0ilers please") == [Match("spoilers", "community")]
    assert await ours.blocklist("guild-1") is first  # unchanged set: the compiled matcher is reused
    await theirs.add("guild-1", "the ending")
    second = await ours.blocklist("guild-1")
    assert second is not None and second is not first
    assert second.match("the ending") == [Match("the ending", "community")]
    await theirs.remove("guild-1", "spoilers")
    await theirs.remove("guild-1", "the ending")
    assert await ours.blocklist("guild-1") is None


async def test_works_with_a_client_that_decodes_responses(redis: aioredis.Redis) -> None:
    url = redis.connection_pool.connection_kwargs
    client = aioredis.Redis(host=url["host"], port=url["port"], decode_responses=True)
    try:
        community = CommunityBlocklist(client)
        await community.add("guild-1", "spoilers")
        assert await community.list("guild-1") == ["spoilers"]
    finally:
        await client.aclose()
