"""/admin …: moderators' commands in the chat, with core's grammar (core/admin.py), run by core's AdminService.

Telegram messages carry no user ids in plain text, so a user argument is one of:
  - a numeric user id                       /admin ban 123456789 for 2h spamming
  - a mention picked from the member list   (a text_mention entity: its user id is used)
  - "this", or nothing at all, in a command sent as a reply: the author of the replied-to message, or, for a
    reply to one of the bot's results, the person who asked for it
                                            (reply) /admin ban for 2h spamming · /admin quota this 10
A reply to a result with `/admin delete` or `/admin cancel` (no id) acts on that result's request.
@usernames can't be looked up through the Bot API, so they are refused with a hint.

Privilege (bots/telegram/requester.py): a chat administrator's rank counts in that chat only, and never reaches
OWNER, so `tier` and `quota` (an owner's: they change a user's limits everywhere) stay with the bot's owners by
core's own check. `cancel` and `delete` accept the chat rank only for requests made in this chat; elsewhere the
actor's bot-wide level counts. Refused attempts are audited (by core).

The reply is AdminReply.text, split into messages of at most 4096 characters; the messages in
AdminReply.delete_messages that were posted on Telegram are deleted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Sequence

from telegram import Bot, Chat, Message, MessageEntity, Update, User
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bots.telegram.context import BotContext
from bots.telegram.replies import report_error, send_text, unmentioned
from bots.telegram.requester import GROUP_TYPES, requester_for
from core.commands.buttons import decode_button
from core.errors import InvalidRequest, NotFound
from core.governance.admin import AdminReply
from core.models.privileges import Privilege
from core.models.request import Platform, Requester

log = logging.getLogger(__name__)

MESSAGE_MAX_CHARS = 4096
USER_FIRST = ("ban", "unban", "tier", "quota", "usage")  # commands whose first argument is a user
TWO_ARGUMENTS = ("tier", "quota")  # <user> <value>: with one argument, the user was left out
ON_REQUEST = ("cancel", "delete")  # commands that act on a request (a reply to a result names it)
THIS = "this"
_USER_ID = re.compile(r"^-?\d+$")

TELEGRAM_NOTES = (
    "\n\nWho: a numeric user id, a mention picked from the member list, or reply to one of their messages "
    "and write “this” or leave the user out (/admin ban for 2h spamming). "
    "Reply to a result with /admin delete or /admin cancel to act on it."
)
WHO = (
    "Say who: reply to one of their messages with this command, pick them from the member list when "
    "you mention them, or give their numeric user id."
)
NO_USERNAMES = (
    "I can't look up @usernames on Telegram. Reply to one of their messages with this command, "
    "or give their numeric user id."
)
NO_REPLY = "“this” means the person whose message you reply to: send the command as a reply to their message."


def with_mention_ids(text: str, entities: Sequence[MessageEntity]) -> str:
    """Each text_mention (a mention of someone picked from the member list) replaced by their user id."""
    encoded, parts, cursor = text.encode("utf-16-le"), [], 0
    for entity in sorted(entities, key=lambda e: e.offset):
        if entity.type != MessageEntity.TEXT_MENTION or entity.user is None:
            continue
        start, end = 2 * entity.offset, 2 * (entity.offset + entity.length)
        if start < cursor:
            continue
        parts += [encoded[cursor:start].decode("utf-16-le"), f" {entity.user.id} "]
        cursor = end
    parts.append(encoded[cursor:].decode("utf-16-le"))
    return "".join(parts)


def split_message(text: str, limit: int = MESSAGE_MAX_CHARS) -> list[str]:
    """Text in pieces of at most `limit` characters, cut at line ends where possible."""
    pieces: list[str] = []
    current = ""
    for whole in text.splitlines() or [""]:
        line = whole
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            cut = line.rfind(" ", 1, limit + 1)  # between words where there is a space
            cut = cut if cut > 0 else limit
            pieces.append(line[:cut])
            line = line[cut:].lstrip(" ")
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            candidate = line
        current = candidate
    if current or not pieces:
        pieces.append(current or "(empty)")
    return pieces


def fill_user(command: str, args: list[str], replied: str | None) -> list[str]:
    """The user argument filled in from the replied-to message ("this" or left out), and checked."""
    args = list(args)
    if command == "audit":
        for index in range(0, len(args) - 1, 2):
            if args[index].lower() == "user" and args[index + 1].lower() == THIS:
                if replied is None:
                    raise InvalidRequest("user", NO_REPLY)
                args[index + 1] = replied
        return args
    if command not in USER_FIRST:
        return args
    if args and args[0].lower() == THIS:
        if replied is None:
            raise InvalidRequest("user", NO_REPLY)
        args[0] = replied
    elif replied is not None and (
        not args
        or (command in TWO_ARGUMENTS and len(args) == 1)
        or (command == "ban" and not _USER_ID.match(args[0]))
    ):
        args.insert(0, replied)
    if args and args[0].startswith("@"):
        raise InvalidRequest("user", NO_USERNAMES)
    if not args or not _USER_ID.match(args[0]):
        raise InvalidRequest("user", WHO)
    return args


def _replied_to(message: Message) -> Message | None:
    """The message this one replies to, ignoring the implicit reply to a forum topic's first message."""
    reply = message.reply_to_message
    if reply is None or reply.forum_topic_created is not None:
        return None
    if message.is_topic_message and reply.message_id == message.message_thread_id:
        return None
    return reply


def result_request_id(message: Message) -> str | None:
    """The request behind one of the bot's results: read from its buttons' callback data."""
    markup = message.reply_markup
    for row in markup.inline_keyboard if markup else ():
        for button in row:
            if isinstance(button.callback_data, str):
                try:
                    return decode_button(button.callback_data).request_id
                except InvalidRequest:  # a /settings button or a link: not a result's
                    continue
    return None


class AdminCommands:
    def __init__(self, imagebot: BotContext) -> None:
        self.imagebot = imagebot

    async def admin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        chat, bot = message.chat, context.bot
        command = ""
        try:
            standing = await self.imagebot.privileges.standing(bot, user, chat)
            text = with_mention_ids(message.text, message.entities)
            words = text.split()[1:]
            command = words[0].lower() if words else ""
            args = await self._arguments(command, words[1:], message, bot)
            actor = requester_for(user, chat, standing.here)  # core scopes it to requests made here
            reply = await self._run(command, args, actor, bot, chat)
        except Exception as exc:  # core audits refused admin commands itself
            await report_error(exc, bot, chat_id=chat.id, reply_to=message.message_id)
            return
        text = reply.text
        if command in ("", "help") and actor.privilege >= Privilege.MOD:
            text += TELEGRAM_NOTES
        unremoved = await self._delete_messages(bot, reply)
        if unremoved:
            text += (
                f"\nI couldn't remove {unremoved} posted message(s): Telegram lets bots delete messages for "
                "48 hours only, so please delete them by hand."
            )
        for piece in split_message(unmentioned(text)):  # the joiners count towards the limit
            await send_text(bot, chat.id, piece, reply_to=message.message_id)

    async def _arguments(self, command: str, args: list[str], message: Message, bot: Bot) -> list[str]:
        reply = _replied_to(message)
        request_id = result_request_id(reply) if reply is not None and reply.from_user == bot.bot else None
        if command in ON_REQUEST and not args and request_id:
            return [request_id]
        replied: str | None = None
        if reply is not None and reply.from_user is not None:
            if request_id is not None:  # one of our results: the person who asked for it
                replied = await self._asker(request_id)
            elif not reply.from_user.is_bot:
                replied = str(reply.from_user.id)
        return fill_user(command, args, replied)

    async def _asker(self, request_id: str) -> str | None:
        try:
            asker = (await self.imagebot.service.queue.load(request_id)).requester
        except NotFound:
            return None
        return asker.user_id if asker.platform == Platform.TELEGRAM else None

    async def _run(self, command: str, args: list[str], actor: Requester, bot: Bot, chat: Chat) -> AdminReply:
        lookup = functools.partial(self._target, bot, chat)
        return await self.imagebot.admin.execute(" ".join([command, *args]), actor, lookup)

    async def _target(self, bot: Bot, chat: Chat, user_id: str) -> Requester:
        """The user a command names, as this chat sees them: their name (getChatMember) and rank here."""
        user = User(int(user_id), first_name="", is_bot=False)
        if chat.type in GROUP_TYPES:
            with contextlib.suppress(TelegramError):  # not in the group: a plain user here, by id
                user = (await bot.get_chat_member(chat.id, int(user_id))).user
        standing = await self.imagebot.privileges.standing(bot, user, chat)
        return requester_for(user, chat, standing.here)

    async def _delete_messages(self, bot: Bot, reply: AdminReply) -> int:
        """Delete the posted messages AdminReply names; returns how many could not be deleted."""
        failed = 0
        for location in reply.delete_messages:
            if location.get("platform", Platform.TELEGRAM.value) != Platform.TELEGRAM.value:
                continue
            chat_id, message_id = int(location["chat_id"]), int(location["message_id"])
            try:
                await bot.delete_message(chat_id, message_id)
            except TelegramError as exc:
                log.info("message %s in chat %s not deleted (%s)", message_id, chat_id, exc.message)
                failed += 1
        return failed
