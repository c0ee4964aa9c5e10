"""How /admin arguments are read on Telegram: replies, "this", mentions, long replies (no network)."""

from __future__ import annotations

import pytest
from telegram import ChatMember, MessageEntity, User

from bots.telegram.admin import (
    NO_REPLY,
    NO_USERNAMES,
    WHO,
    fill_user,
    split_message,
    with_mention_ids,
)
from bots.telegram.requester import member_level
from core.errors import InvalidRequest
from core.models.privileges import Privilege

REPLIED = "1002"


@pytest.mark.parametrize(
    ("command", "args", "replied", "expected"),
    [
        ("ban", ["1002", "for", "2h"], None, ["1002", "for", "2h"]),
        ("ban", ["for", "2h", "spam"], REPLIED, [REPLIED, "for", "2h", "spam"]),  # user left out
        ("ban", [], REPLIED, [REPLIED]),
        ("ban", ["this", "spam"], REPLIED, [REPLIED, "spam"]),
        ("ban", ["777"], REPLIED, ["777"]),  # an explicit id wins over the reply
        ("quota", ["5"], REPLIED, [REPLIED, "5"]),
        ("quota", ["777", "5"], REPLIED, ["777", "5"]),
        ("tier", ["this", "supporter"], REPLIED, [REPLIED, "supporter"]),
        ("usage", [], REPLIED, [REPLIED]),
        ("audit", ["user", "this", "since", "1d"], REPLIED, ["user", REPLIED, "since", "1d"]),
        ("queue", [], REPLIED, []),
        ("block", ["add", "this"], REPLIED, ["add", "this"]),  # not a user argument
    ],
)
def test_the_user_argument_comes_from_the_reply(
    command: str, args: list[str], replied: str | None, expected: list[str]
) -> None:
    assert fill_user(command, args, replied) == expected


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("ban", ["this"], NO_REPLY),
        ("audit", ["user", "this"], NO_REPLY),
        ("ban", ["@bob", "spam"], NO_USERNAMES),
        ("ban", ["for", "2h"], WHO),
        ("unban", [], WHO),
    ],
)
def test_a_user_that_cant_be_found_is_refused_with_a_hint(
    command: str, args: list[str], message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        fill_user(command, args, None)
    assert caught.value.message == message


def test_text_mentions_become_user_ids_even_after_wide_characters() -> None:
    text = "/admin ban 🦊 Jean Dupont for 2h"  # the fox is two UTF-16 units: offsets count those
    jean = User(4242, "Jean", False)
    entity = MessageEntity(MessageEntity.TEXT_MENTION, offset=14, length=11, user=jean)
    assert with_mention_ids(text, [entity]).split() == ["/admin", "ban", "🦊", "4242", "for", "2h"]
    assert with_mention_ids("/admin queue", []) == "/admin queue"


def test_long_replies_are_split_between_lines_and_words() -> None:
    text = "\n".join(f"line {i} " + "word " * 30 for i in range(100))
    pieces = split_message(text, limit=500)
    assert all(0 < len(piece) <= 500 for piece in pieces)
    assert "\n".join(pieces).split() == text.split()
    one_line = ", ".join(f"term{i}" for i in range(300))
    cut = split_message(one_line, limit=100)
    assert all(len(piece) <= 100 for piece in cut) and " ".join(cut) == one_line
    assert split_message("short") == ["short"]


def test_chat_status_maps_to_a_privilege() -> None:
    user = {"id": 1, "is_bot": False, "first_name": "A"}
    rights = dict.fromkeys(
        [
            "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
            "can_restrict_members", "can_change_info", "can_invite_users", "can_post_stories",
            "can_edit_stories", "can_delete_stories",
        ],
        True,
    )  # fmt: skip

    def level(status: str, **extra: object) -> Privilege:
        member = ChatMember.de_json({"status": status, "user": user, **extra}, None)
        assert member is not None
        return member_level(member)

    assert level("creator", is_anonymous=False) is Privilege.ADMIN
    assert level("administrator", can_promote_members=True, **rights) is Privilege.ADMIN
    assert level("administrator", can_promote_members=False, **rights) is Privilege.MOD
    assert level("member") is Privilege.USER
