"""Who asked, and where: a core Requester from a Telegram update."""

from __future__ import annotations

from telegram import Chat, User

from core.models.privileges import Privilege
from core.models.request import Platform, Requester

GROUP_TYPES = (Chat.GROUP, Chat.SUPERGROUP)


def requester_for(user: User, chat: Chat, privilege: Privilege = Privilege.USER) -> Requester:
    """`privilege` is the user's level in this chat (bots.telegram.privilege), computed once per update."""
    return Requester(
        platform=Platform.TELEGRAM,
        user_id=str(user.id),
        chat_id=str(chat.id),
        community_id=str(chat.id) if chat.type in GROUP_TYPES else None,
        display_name=user.username or user.full_name,
        privilege=privilege,
    )
