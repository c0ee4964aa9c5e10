"""Who asked, and where: a core Requester from a Telegram update, with the user's privilege computed once.

Bot-wide levels come from settings: OWNER for "telegram:<id>" in `owners`, ADMIN for the ids in
`privileges.telegram_admins`, MOD for `privileges.telegram_mods`.

In a group, the chat's own administrators rank higher *in that chat*: its creator → ADMIN, an administrator who
may appoint administrators (`can_promote_members`) → ADMIN, any other administrator → MOD. The list comes from
getChatAdministrators, one call per chat per `privileges.telegram_admin_cache_s`, cached in Redis so every bot
process shares it. When it can't be fetched, chat status counts for nothing (fail closed). Anonymous
administrators post as the group, so they can't be told apart: they must post as themselves to moderate.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from telegram import Bot, Chat, ChatMember, ChatMemberAdministrator, User
from telegram.error import TelegramError

from core.keys import TELEGRAM_CHAT_ADMINS_KEY
from core.models.privileges import Privilege, effective_privilege
from core.models.request import Platform, Requester
from core.settings import Settings

log = logging.getLogger(__name__)

GROUP_TYPES = (Chat.GROUP, Chat.SUPERGROUP)


def requester_for(user: User, chat: Chat, privilege: Privilege = Privilege.USER) -> Requester:
    """`privilege` is the user's level in this chat (`Privileges.standing`), computed once per update."""
    return Requester(
        platform=Platform.TELEGRAM,
        user_id=str(user.id),
        chat_id=str(chat.id),
        community_id=str(chat.id) if chat.type in GROUP_TYPES else None,
        display_name=user.username or user.full_name,
        privilege=privilege,
    )


@dataclass(frozen=True)
class Standing:
    """A user's level bot-wide (settings only) and in the chat of the update (settings or chat status)."""

    bot_wide: Privilege
    here: Privilege


def member_level(member: ChatMember) -> Privilege:
    """What a chat administrator may do here: the creator and those who appoint admins are ADMIN, others MOD."""
    if member.status == ChatMember.OWNER:
        return Privilege.ADMIN
    if member.status == ChatMember.ADMINISTRATOR:
        promotes = isinstance(member, ChatMemberAdministrator) and member.can_promote_members
        return Privilege.ADMIN if promotes else Privilege.MOD
    return Privilege.USER


class Privileges:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis

    def bot_wide(self, user_id: int | str) -> Privilege:
        configured = self.settings.privileges
        user = str(user_id)
        level = Privilege.USER
        if user in configured.telegram_admins:
            level = Privilege.ADMIN
        elif user in configured.telegram_mods:
            level = Privilege.MOD
        return effective_privilege(Platform.TELEGRAM, user, level, self.settings.owners)

    async def standing(self, bot: Bot, user: User, chat: Chat) -> Standing:
        bot_wide = self.bot_wide(user.id)
        if chat.type not in GROUP_TYPES or bot_wide >= Privilege.ADMIN:
            return Standing(bot_wide, bot_wide)
        levels = await self._chat_levels(bot, chat.id)
        return Standing(bot_wide, max(bot_wide, Privilege(levels.get(str(user.id), Privilege.USER))))

    async def _chat_levels(self, bot: Bot, chat_id: int) -> dict[str, int]:
        """user id → level for the chat's administrators, from the cache or one getChatAdministrators call."""
        key = TELEGRAM_CHAT_ADMINS_KEY.format(chat_id=chat_id)
        ttl = self.settings.privileges.telegram_admin_cache_s
        if ttl:
            cached = await self.redis.get(key)
            if cached is not None:
                levels: dict[str, int] = json.loads(cached)
                return levels
        try:
            members = await bot.get_chat_administrators(chat_id)
        except TelegramError as exc:
            log.warning("chat %s: administrators unknown (%s); chat status ignored", chat_id, exc.message)
            return {}
        levels = {str(member.user.id): int(member_level(member)) for member in members}
        if ttl:
            await self.redis.set(key, json.dumps(levels), ex=ttl)
        return levels
