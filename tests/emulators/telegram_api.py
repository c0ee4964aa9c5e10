"""A small emulator of the Telegram Bot API, for the real python-telegram-bot client in tests.

    /bot<token>/<method>          getMe, getUpdates (long poll, offsets), deleteWebhook, setWebhook,
                                  sendMessage, editMessageText, editMessageCaption, editMessageMedia,
                                  editMessageReplyMarkup, deleteMessage, sendPhoto, sendDocument, sendChatAction,
                                  answerCallbackQuery, getFile, setMyCommands, getMyCommands (per scope),
                                  getChatAdministrators, getChatMember
    /file/bot<token>/<file_path>  the bytes of a file users sent (or the bot uploaded)

Bodies may be empty, form-urlencoded, JSON or multipart (PTB sends JSON-encoded values as form fields and
files as multipart parts). Everything the bot sends is kept as a `Sent` message per chat, with its current
text/caption/keyboard, its edit history and the uploaded bytes; every call is also in `.calls`. Edits answer as
Telegram does: editMessageText on a photo "there is no text in the message to edit", editMessageCaption on a text
message "there is no caption in the message to edit", editMessageMedia on a text message "there is no media in the
message to edit" (a text message never becomes a photo), an edit that changes nothing "message is not modified"
(a newly uploaded file always changes the media; the file_id the message already shows does not), an edit or
delete of a deleted message "message to edit/delete not found". An edit without reply_markup removes the keyboard.

Tests play users with `user_message`, `user_photo`, `burst` (many messages in one getUpdates batch) and `press`
(a callback query), and wait for the bot with
`await emulator.wait_for(predicate, timeout)`. `make_admin(chat, user, creator=…, can_promote_members=…)` sets who
administers a group (getChatAdministrators/getChatMember answer from it, and getChatMember knows every user
who wrote); `bot_message(sent)` is a bot message as
Telegram would nest it in `reply_to_message`. `rate_limit_next(method, count, retry_after)` answers the
next `count` calls of a method with Telegram's 429 body; a message (send…, edit…, copy…, forward…, not
sendChatAction) into that chat before the retry_after has passed is kept in `too_early`. `block(chat_id)`
plays a user who blocked the bot (or a group that removed it): every call into that chat is answered 403
Forbidden (or another error given).
`migrate(chat_id, new_chat_id)` plays a group upgraded to a supergroup: every call into the old id is
answered 400 with parameters.migrate_to_chat_id, as Telegram does. `fail_next(method, count, status,
description)` answers the next `count` calls of a method with that error (e.g. a message too old to delete).

What the bot sends is parsed as Telegram would: `parse_mode` (HTML or Markdown user links become text_mention
entities), explicit `entities`/`caption_entities`, and @username mentions found in the text. `Sent.entities`
holds the result and `Sent.pings()` who would be notified by it.

`webhook` is the webhook as setWebhook left it ({"url", "secret_token", "allowed_updates"}; None after
deleteWebhook); while one is set, getUpdates is refused with 409 Conflict, as Telegram does.
`post_update(url, update, secret)` plays Telegram delivering an update to the bot's webhook. `polls` counts
getUpdates calls (empty ones too): a bot that has stopped makes no more.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import ClientSession, web
from PIL import Image

DEFAULT_TOKEN = "123456789:AAE-emulator-secret-token-0123456789"
BOT_ID = 123456789
BOT_USERNAME = "imagebot_test_bot"

T = TypeVar("T")

_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id", "cache_time"}
_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "commands",
    "allowed_updates",
    "scope",
    "link_preview_options",
    "entities",
    "caption_entities",
    "media",
}
_BOOL_FIELDS = {"has_spoiler", "show_alert", "disable_notification", "drop_pending_updates"}
# Telegram links an @username (5-32 letters, digits, underscores, starting with a letter) not inside a word.
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z][A-Za-z0-9_]{4,31})(?![\w@])")
_USER_LINKS = {
    "HTML": re.compile(r'<a href="tg://user\?id=(\d+)">(.*?)</a>'),
    "Markdown": re.compile(r"\[(.*?)\]\(tg://user\?id=(\d+)\)"),
    "MarkdownV2": re.compile(r"\[(.*?)\]\(tg://user\?id=(\d+)\)"),
}
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class User:
    id: int
    first_name: str = "Ada"
    username: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class Chat:
    id: int
    type: str = "private"  # "private", "group", "supergroup"
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        return data


@dataclass
class Sent:
    """A message the bot sent, as it stands now (edits applied), with what it carried."""

    chat_id: int
    message_id: int
    method: str  # sendMessage, sendPhoto, sendDocument
    text: str | None = None
    caption: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to: int | None = None  # the message id it replies to
    file: bytes | None = None  # the photo or document bytes (the latest, after editMessageMedia)
    file_name: str | None = None
    file_id: str | None = None  # the photo's file_id, as Telegram answered it
    pictures: list[bytes] = field(default_factory=list)  # every photo/document it has shown, in order
    silent: bool = False  # sent with disable_notification
    has_spoiler: bool = False
    deleted: bool = False
    history: list[str] = field(default_factory=list)  # every text/caption it has shown, in order
    entities: list[dict[str, Any]] = field(default_factory=list)  # as Telegram parsed the text or caption
    at: float = field(default_factory=time.monotonic)  # when it was sent

    def pings(self) -> list[str]:
        """Who this message notifies: "@username" for mentions, "id:<n>" for links to a user."""
        shown = self.shown.encode("utf-16-le")
        pinged = []
        for entity in self.entities:
            if entity["type"] == "mention":
                start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
                pinged.append(shown[start:end].decode("utf-16-le"))
            elif entity["type"] == "text_mention":
                pinged.append(f"id:{entity['user']['id']}")
        return pinged

    @property
    def shown(self) -> str:
        return self.text if self.text is not None else (self.caption or "")

    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def callback_data(self) -> list[str]:
        return [button["callback_data"] for button in self.buttons() if "callback_data" in button]


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _coerce(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _INT_FIELDS and value.lstrip("-").isdigit():
        return int(value)
    if name in _JSON_FIELDS:
        return json.loads(value)
    if name in _BOOL_FIELDS:
        return value.lower() == "true"
    return value


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[dict[str, Any]]:
    if not text.startswith("/"):
        return []
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(text.split(maxsplit=1)[0])}]


def as_telegram_parses(
    text: str, params: dict[str, Any], entities_field: str
) -> tuple[str, list[dict[str, Any]]]:
    """The text as shown and its entities, as Telegram makes them from parse_mode, entities and @mentions."""
    entities: list[dict[str, Any]] = list(params.get(entities_field) or [])
    links = _USER_LINKS.get(str(params.get("parse_mode") or ""))
    if links is not None and not entities:
        shown, cursor = "", 0
        for match in links.finditer(text):
            user_id, label = (match[1], match[2]) if links is _USER_LINKS["HTML"] else (match[2], match[1])
            shown += text[cursor : match.start()]
            entities.append(
                {
                    "type": "text_mention",
                    "offset": _utf16_len(shown),
                    "length": _utf16_len(label),
                    "user": {"id": int(user_id), "is_bot": False, "first_name": label},
                }
            )
            shown += label
            cursor = match.end()
        text = shown + text[cursor:]
    for match in _MENTION.finditer(text):
        offset = _utf16_len(text[: match.start()])
        entities.append({"type": "mention", "offset": offset, "length": _utf16_len(match[0])})
    return text, entities


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class TelegramEmulator:
    """The emulator's state; `start()` serves it on a free port of 127.0.0.1."""

    def __init__(self, token: str = DEFAULT_TOKEN, username: str = BOT_USERNAME) -> None:
        self.token = token
        self.username = username
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.answers: list[CallbackAnswer] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.commands: list[dict[str, Any]] = []  # the default scope's
        self.scoped_commands: dict[str, list[dict[str, Any]]] = {}  # scope ("default", "chat:<id>", …) → list
        self.chat_admins: dict[int, dict[int, dict[str, Any]]] = {}  # chat id → user id → ChatMember
        self.users: dict[int, dict[str, Any]] = {}  # every user who wrote something, for getChatMember
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id → (file_path, bytes)
        self.batches: list[int] = []  # how many updates each getUpdates answer carried (empty ones left out)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._rate_limits: dict[str, tuple[int, int]] = {}  # method → (calls left, retry_after)
        self._failures: dict[str, tuple[int, int, str]] = {}  # method → (calls left, status, description)
        self._polls_released = False  # getUpdates answers at once (a bot is stopping)
        self.polls = 0  # getUpdates calls so far, empty ones included: is a bot still polling?
        self._flood_until: dict[Any, float] = {}  # chat → when its 429's retry_after has passed (monotonic)
        self.too_early: list[Call] = []  # messages sent into a chat before its retry_after had passed
        self.webhook: dict[str, Any] | None = None
        self.blocked: dict[int, tuple[int, str]] = {}  # chat → the error every call into it gets
        self.migrated: dict[int, int] = {}  # group → the supergroup it became
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- serving ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        if request.content_type == "application/json":
            body = await request.json()
            return dict(body) if isinstance(body, dict) else {}
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params: dict[str, Any] = {}
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    params[name] = (value.filename, value.file.read())
                else:
                    params[name] = _coerce(name, value)
            return params
        return {}

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params = await self._params(request)
        status = 200
        if method == "getUpdates":
            self.polls += 1
        self._check_flood_wait(method, params)
        try:
            self._maybe_rate_limit(method, params)
            self._maybe_fail(method)
            self._maybe_forbid(params)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params)
            body: dict[str, Any] = {"ok": True, "result": result}
        except ApiError as exc:
            status = exc.status
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
        if method != "getUpdates" or body.get("result") or status != 200:
            # Recorded in the same step as the handler's changes: whoever sees a message sent also sees its call.
            self.calls.append(Call(method, params, status))
            await self._notify()
        return web.json_response(body, status=status)

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        for file_path, data in self.files.values():
            if file_path == request.match_info["path"]:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)

    def _maybe_rate_limit(self, method: str, params: dict[str, Any]) -> None:
        left, retry_after = self._rate_limits.get(method, (0, 0))
        if left > 0:
            self._rate_limits[method] = (left - 1, retry_after)
            chat = _coerce("chat_id", params.get("chat_id"))
            until = time.monotonic() + retry_after
            self._flood_until[chat] = max(self._flood_until.get(chat, 0.0), until)
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    def _check_flood_wait(self, method: str, params: dict[str, Any]) -> None:
        """A message into a chat before the retry_after of a 429 there has passed goes to `too_early`."""
        if method == "sendChatAction" or not method.startswith(("send", "edit", "copy", "forward")):
            return
        chat = _coerce("chat_id", params.get("chat_id"))
        if time.monotonic() < self._flood_until.get(chat, 0.0):
            self.too_early.append(Call(method, params, 0))

    def _maybe_fail(self, method: str) -> None:
        left, status, description = self._failures.get(method, (0, 0, ""))
        if left > 0:
            self._failures[method] = (left - 1, status, description)
            raise ApiError(status, description)

    def _maybe_forbid(self, params: dict[str, Any]) -> None:
        chat = _coerce("chat_id", params.get("chat_id"))
        if isinstance(chat, int) and chat in self.blocked:
            raise ApiError(*self.blocked[chat])
        if isinstance(chat, int) and chat in self.migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat]},
            )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- test controls ---------------------------------------------------------------------------------------

    def rate_limit_next(self, method: str, count: int, retry_after: int = 1) -> None:
        """Answer the next `count` calls of `method` with 429 and parameters.retry_after."""
        self._rate_limits[method] = (count, retry_after)

    def fail_next(self, method: str, count: int, status: int, description: str) -> None:
        """Answer the next `count` calls of `method` with `status` and `description` (e.g. 400 "Bad Request:
        message can't be deleted for everyone", as Telegram answers for a message older than 48 hours)."""
        self._failures[method] = (count, status, description)

    def block(
        self, chat_id: int, status: int = 403, description: str = "Forbidden: bot was blocked by the user"
    ) -> None:
        """The user blocked the bot (or the group removed it, or was deleted: 400 "Bad Request: chat not
        found"): every call into `chat_id` is answered with `status` and `description`."""
        self.blocked[chat_id] = (status, description)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """The group `chat_id` was upgraded to the supergroup `new_chat_id`: calls into the old id are refused
        with 400 and parameters.migrate_to_chat_id."""
        self.migrated[chat_id] = new_chat_id

    async def post_update(
        self, url: str, update: dict[str, Any], secret: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Deliver `update` to a webhook as Telegram does: a JSON POST with the secret header (when given).

        Returns the HTTP status the bot answered, and the update as sent (with its update_id).
        """
        update = {"update_id": next(self._update_ids)} | update
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with ClientSession() as session, session.post(url, json=update, headers=headers) as response:
            await response.read()
            return response.status, update

    async def release_polls(self, released: bool = True) -> None:
        """While released, getUpdates answers at once instead of long-polling, so a stopping bot stops now."""
        self._polls_released = released
        await self._notify()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 10.0) -> T:  # noqa: ASYNC109
        """Wait until predicate() is truthy (re-checked after every call the bot makes) and return it."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.2)

    def in_chat(self, chat_id: int, method: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id and (method is None or s.method == method)]

    def message(self, chat_id: int, message_id: int) -> Sent:
        for sent in self.sent:
            if (sent.chat_id, sent.message_id) == (chat_id, message_id):
                return sent
        raise KeyError((chat_id, message_id))

    def count(self, method: str) -> int:
        return sum(1 for call in self.calls if call.method == method and call.status == 200)

    async def _push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self._updates.append(update)
        await self._notify()
        return update

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _user_message(self, chat: Chat, user: User) -> dict[str, Any]:
        self.users[user.id] = user.to_dict()
        return {
            "message_id": self._next_message_id(chat.id),
            "date": int(time.time()),
            "chat": chat.to_dict(),
            "from": user.to_dict(),
        }

    async def user_message(
        self,
        chat: Chat,
        user: User,
        text: str,
        reply_to: dict[str, Any] | None = None,
        mentions: dict[str, User] | None = None,
    ) -> dict[str, Any]:
        """A user writes `text` (commands get their bot_command entity). Returns the message.

        `mentions` maps a piece of the text to the user it mentions (a text_mention entity, as when the
        writer picks someone without a username from the member list).
        """
        message = self.compose(chat, user, text, reply_to, mentions)
        await self._push("message", message)
        return message

    async def burst(self, messages: list[tuple[Chat, User, str]]) -> list[dict[str, Any]]:
        """Users write all these at once: the bot's next getUpdates returns them in one batch. Returns them."""
        composed = [self.compose(chat, user, text) for chat, user, text in messages]
        self._updates += [{"update_id": next(self._update_ids), "message": message} for message in composed]
        await self._notify()
        return composed

    def compose(
        self,
        chat: Chat,
        user: User,
        text: str,
        reply_to: dict[str, Any] | None = None,
        mentions: dict[str, User] | None = None,
    ) -> dict[str, Any]:
        """The message `user_message` would send, without queueing it (e.g. to `post_update` it to a webhook)."""
        message = self._user_message(chat, user) | {"text": text}
        entities = _command_entities(text)
        for shown, mentioned in (mentions or {}).items():
            offset = _utf16_len(text[: text.index(shown)])
            entities.append(
                {
                    "type": "text_mention",
                    "offset": offset,
                    "length": _utf16_len(shown),
                    "user": mentioned.to_dict(),
                }
            )
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    def add_file(self, data: bytes, extension: str = "jpg") -> str:
        number = next(self._file_ids)
        file_id = f"file-{number}"
        self.files[file_id] = (f"photos/file_{number}.{extension}", data)
        return file_id

    def _photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        file_id = self.add_file(data)
        return [
            {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "width": width,
                "height": height,
                "file_size": len(data),
            }
        ]

    async def user_photo(
        self, chat: Chat, user: User, data: bytes, caption: str | None = None
    ) -> dict[str, Any]:
        """A user sends a photo (with an optional caption). Returns the message."""
        message = self._user_message(chat, user) | {"photo": self._photo_sizes(data)}
        if caption:
            message["caption"] = caption
            if entities := _command_entities(caption):
                message["caption_entities"] = entities
        await self._push("message", message)
        return message

    async def user_document(
        self, chat: Chat, user: User, data: bytes, file_name: str, mime_type: str, caption: str | None = None
    ) -> dict[str, Any]:
        """A user sends a file (a document, e.g. an uncompressed picture or a PDF). Returns the message."""
        file_id = self.add_file(data, file_name.rsplit(".", 1)[-1])
        document = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        message = self._user_message(chat, user) | {"document": document}
        if caption:
            message["caption"] = caption
            if entities := _command_entities(caption):
                message["caption_entities"] = entities
        await self._push("message", message)
        return message

    async def press(self, chat: Chat, user: User, message: Sent, data: str) -> str:
        """A user presses the inline button with callback_data `data` under a bot message. Returns the query id."""
        query_id = f"cq-{next(self._callback_ids)}"
        bot_message = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": chat.to_dict(),
            "from": self._me(),
            "text": message.shown,
        }
        await self._push(
            "callback_query",
            {
                "id": query_id,
                "from": user.to_dict(),
                "chat_instance": str(chat.id),
                "message": bot_message,
                "data": data,
            },
        )
        return query_id

    def make_admin(
        self, chat: Chat, user: User, *, creator: bool = False, can_promote_members: bool = False
    ) -> None:
        """Make `user` the creator or an administrator of the group `chat`."""
        if creator:
            member: dict[str, Any] = {"status": "creator", "user": user.to_dict(), "is_anonymous": False}
        else:
            rights = [
                "can_manage_chat",
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
            ]
            member = {"status": "administrator", "user": user.to_dict(), "can_be_edited": False}
            member |= {"is_anonymous": False, "can_promote_members": can_promote_members}
            member |= dict.fromkeys(rights, True)
        self.chat_admins.setdefault(chat.id, {})[user.id] = member

    def bot_message(self, sent: Sent) -> dict[str, Any]:
        """A message the bot sent, as Telegram nests it in a user's `reply_to_message`."""
        return self._bot_message(sent)

    def answer(self, query_id: str) -> CallbackAnswer | None:
        return next((a for a in self.answers if a.callback_query_id == query_id), None)

    # -- methods ---------------------------------------------------------------------------------------------

    def _me(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Imagebot",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self._me()

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url")
        if not url:
            raise ApiError(400, "Bad Request: bad webhook: an HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": params.get("allowed_updates"),
        }
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        webhook = self.webhook or {}
        return {"url": webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
                "delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]  # confirmed ones are dropped
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not self._updates and time.monotonic() < deadline and not self._polls_released:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
        batch = self._updates[:limit]
        if batch:
            self.batches.append(len(batch))
        return batch

    def _chat(self, params: dict[str, Any]) -> int:
        if "chat_id" not in params:
            raise ApiError(400, "Bad Request: chat_id is empty")
        return int(params["chat_id"])

    def _bot_message(self, sent: Sent) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": sent.chat_id, "type": "private" if sent.chat_id > 0 else "group"},
            "from": self._me(),
        }
        if sent.text is not None:
            message["text"] = sent.text
        if sent.caption is not None:
            message["caption"] = sent.caption
        if sent.entities:
            message["entities" if sent.text is not None else "caption_entities"] = sent.entities
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:  # as Telegram: never a ForceReply
            message["reply_markup"] = sent.reply_markup
        return message

    async def _send(self, method: str, params: dict[str, Any], **fields: Any) -> Sent:
        chat_id = self._chat(params)
        reply = params.get("reply_parameters") or {}
        markup = params.get("reply_markup")
        if markup:
            for button in (b for row in markup.get("inline_keyboard", []) for b in row):
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        sent = Sent(
            chat_id,
            self._next_message_id(chat_id),
            method,
            reply_markup=markup,
            reply_to=reply.get("message_id") or _coerce("message_id", params.get("reply_to_message_id")),
            silent=bool(params.get("disable_notification")),
            **fields,
        )
        sent.history.append(sent.shown)
        if sent.file is not None:
            sent.pictures.append(sent.file)
        self.sent.append(sent)
        return sent

    def _upload(self, params: dict[str, Any], name: str, value: Any = None) -> tuple[str | None, bytes]:
        value = params.get(name) if value is None else value
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if isinstance(value, tuple):
            return value
        if isinstance(value, str) and value in self.files:
            return None, self.files[value][1]
        raise ApiError(400, f"Bad Request: there is no {name} in the request")

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        text, entities = as_telegram_parses(text, params, "entities")
        return self._bot_message(await self._send("sendMessage", params, text=text, entities=entities))

    async def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        file_name, data = self._upload(params, "photo")
        caption, entities = params.get("caption"), []
        if caption and len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        if caption:
            caption, entities = as_telegram_parses(caption, params, "caption_entities")
        sent = await self._send(
            "sendPhoto",
            params,
            caption=caption,
            entities=entities,
            file=data,
            file_name=file_name,
            has_spoiler=bool(params.get("has_spoiler")),
        )
        message = self._bot_message(sent)
        message["photo"] = self._photo_sizes(data)
        sent.file_id = message["photo"][0]["file_id"]
        return message

    async def _m_sendDocument(self, params: dict[str, Any]) -> Any:
        file_name, data = self._upload(params, "document")
        caption, entities = params.get("caption"), []
        if caption:
            caption, entities = as_telegram_parses(caption, params, "caption_entities")
        sent = await self._send(
            "sendDocument", params, caption=caption, entities=entities, file=data, file_name=file_name
        )
        file_id = self.add_file(data, (file_name or "file.bin").rsplit(".", 1)[-1])
        message = self._bot_message(sent)
        message["document"] = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": file_name,
            "file_size": len(data),
        }
        return message

    def _target(self, params: dict[str, Any], action: str = "edit") -> Sent:
        try:
            sent = self.message(self._chat(params), int(params.get("message_id", 0)))
        except KeyError:
            raise ApiError(400, f"Bad Request: message to {action} not found") from None
        if sent.deleted:
            raise ApiError(400, f"Bad Request: message to {action} not found")
        return sent

    async def _edit(self, sent: Sent, params: dict[str, Any], **changes: Any) -> Any:
        markup = params.get("reply_markup")
        if all(getattr(sent, k) == v for k, v in changes.items()) and markup == sent.reply_markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        for key, value in changes.items():
            setattr(sent, key, value)
        sent.reply_markup = markup
        sent.history.append(sent.shown)
        if "file" in changes:
            sent.pictures.append(changes["file"])
        message = self._bot_message(sent)
        if sent.method == "sendPhoto" and sent.file is not None:
            with Image.open(io.BytesIO(sent.file)) as image:
                width, height = image.size
            message["photo"] = [
                {
                    "file_id": sent.file_id,
                    "file_unique_id": f"u{sent.file_id}",
                    "width": width,
                    "height": height,
                }
            ]
        return message

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        sent = self._target(params)
        if sent.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        if not params.get("text"):
            raise ApiError(400, "Bad Request: message text is empty")
        text, entities = as_telegram_parses(params["text"], params, "entities")
        return await self._edit(sent, params, text=text, entities=entities)

    async def _m_editMessageCaption(self, params: dict[str, Any]) -> Any:
        sent = self._target(params)
        if sent.text is not None:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        if len(params.get("caption") or "") > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        caption, entities = as_telegram_parses(params.get("caption") or "", params, "caption_entities")
        return await self._edit(sent, params, caption=caption or None, entities=entities)

    async def _m_editMessageMedia(self, params: dict[str, Any]) -> Any:
        """Replace a photo's (or document's) file and caption; a text message has no media to replace."""
        sent = self._target(params)
        if sent.method not in ("sendPhoto", "sendDocument"):
            raise ApiError(400, "Bad Request: there is no media in the message to edit")
        media = params.get("media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "document"):
            raise ApiError(
                400, "Bad Request: can't parse InputMedia: media type is not specified or unsupported"
            )
        if media.get("type") == "photo" and sent.method != "sendPhoto":
            raise ApiError(
                400, "Bad Request: can't edit a document into a photo here"
            )  # the emulator's limit
        reference = media.get("media")
        if isinstance(reference, str) and reference == sent.file_id:
            file_id, data = sent.file_id, sent.file or b""  # the file it shows already: not a change
        else:
            data = self._upload(params, "media", reference)[1]
            file_id = self.add_file(data)
        caption = media.get("caption")
        if caption and len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        caption, entities = as_telegram_parses(caption or "", media, "caption_entities")
        return await self._edit(
            sent,
            params,
            caption=caption or None,
            entities=entities,
            file=data,
            file_id=file_id,
            has_spoiler=bool(media.get("has_spoiler")),
        )

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        sent = self._target(params)
        return await self._edit(sent, params)

    async def _m_deleteMessage(self, params: dict[str, Any]) -> Any:
        sent = self._target(params, "delete")
        sent.deleted = True
        return True

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        self.chat_actions.append((self._chat(params), str(params.get("action"))))
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        query_id = str(params.get("callback_query_id"))
        if self.answer(query_id) is not None:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        self.answers.append(CallbackAnswer(query_id, params.get("text"), bool(params.get("show_alert"))))
        return True

    async def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        file_path, data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(data),
            "file_path": file_path,
        }

    @staticmethod
    def _scope(params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        return f"chat:{scope['chat_id']}" if "chat_id" in scope else str(scope["type"])

    async def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        commands = list(params.get("commands") or [])
        scope = self._scope(params)
        self.scoped_commands[scope] = commands
        if scope == "default":
            self.commands = commands
        return True

    async def _m_getMyCommands(self, params: dict[str, Any]) -> Any:
        return self.scoped_commands.get(self._scope(params), [])

    def _group(self, params: dict[str, Any]) -> int:
        chat_id = self._chat(params)
        if chat_id > 0:
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        return chat_id

    async def _m_getChatAdministrators(self, params: dict[str, Any]) -> Any:
        return list(self.chat_admins.get(self._group(params), {}).values())

    async def _m_getChatMember(self, params: dict[str, Any]) -> Any:
        chat_id, user_id = self._chat(params), int(params.get("user_id", 0))
        member = self.chat_admins.get(chat_id, {}).get(user_id)
        if member is not None:
            return member
        if user_id not in self.users:  # never wrote anything here: as Telegram answers for a stranger
            raise ApiError(400, "Bad Request: user not found")
        return {"status": "member", "user": self.users[user_id]}
