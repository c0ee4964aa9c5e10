"""A small emulator of Discord's REST API and gateway, for the real discord.py client in tests.

REST (under /api/v10):
    GET   /users/@me, /oauth2/applications/@me, /gateway/bot    login and sharding
    PUT   /applications/{app}/commands, …/guilds/{g}/commands   bulk overwrite of application commands
    POST  /interactions/{id}/{token}/callback                    responses of types 4, 5, 6, 7, 8, 9
    GET/PATCH/DELETE /webhooks/{app}/{token}/messages/{@original|id}
    POST  /webhooks/{app}/{token}                                follow-ups (JSON or multipart)
    POST  /users/@me/channels                                    opening a DM channel with a user
    POST  /channels/{channel}/messages                          messages sent with the bot token
    DELETE /channels/{channel}/messages/{id}                     deleting them (or interaction replies)
    GET   /attachments/{name}                                    files users "uploaded" (see `add_attachment`)
Gateway (GET /gateway, and /gateway-resume as READY's resume_gateway_url; a websocket of plain JSON text
frames): HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeat ACKs, RESUME → RESUMED, and INTERACTION_CREATE
dispatched by the test (`slash`, `click`, `message_command`) on the guild's shard (or the one the test names),
with the member's roles and an allow overwrite in the channel as the test says; as on Discord, the member's
`permissions` in the payload are the channel's (@everyone, the roles, then the overwrite), and the guild-wide
ones follow from the roles in GUILD_CREATE (`mod_role` has Manage Messages, `admin_role` Manage Server). Also
user options (`UserOption`), subcommands of groups, and GUILD_ROLE_CREATE for roles added with `add_role`.
`shards` is what GET /gateway/bot recommends (AutoShardedClient then IDENTIFYs once per shard; the guild lives
on shard (guild_id >> 22) % shards, as on Discord). `drop_gateway` closes the bot's connections, and with
`hold=True` keeps new ones waiting until `reopen_gateway`, so a test can act while the bot is disconnected.
Each user has a DM channel (`dm_messages`); sending to one in `closed_dms` is refused (403, code 50007).

Every REST call the bot makes is recorded as a `Call` (uploaded files keep their bytes) and messages are kept
as the bot left them, so a test can await what a user would see (`wait_for`), including whom a message
notified (`Message.pinged`, from its mentions and `allowed_mentions`). `rate_limit` answers the next
matching calls with 429 and the headers discord.py reads (retry_after, Via, X-RateLimit-*). Replies carry
content-type exactly `application/json`, as discord.py requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
BOT_TOKEN = "emulator-bot-token.0123456789"

# A plain member's permissions: view, send, embed, attach, read history, use application commands.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 31)
MANAGE_MESSAGES = 1 << 13
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3

# Interaction types (Discord's numbering).
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

_counter = itertools.count(1)


def snowflake(at: float | None = None) -> int:
    """A unique Discord id whose embedded time is `at` (default: now)."""
    ms = int((time.time() if at is None else at) * 1000)
    return ((ms - DISCORD_EPOCH_MS) << 22) | (next(_counter) & 0x3FFFFF)


LIVE_PREVIEW_FILE = "preview.jpg"  # what bots/discord/delivery.py names a live preview


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class UserOption:
    """A user picked in a command's user option (type 6); resolved like Discord does, with their roles."""

    user_id: int
    roles: tuple[int, ...] = ()


@dataclass
class Call:
    """One REST call the bot made (that was answered with a non-429 status)."""

    method: str
    route: str  # "callback", "original", "followup", "channel", "dm", "commands", "login", "attachment"
    path: str
    payload: dict[str, Any]
    files: list[Upload]
    token: str | None = None  # the interaction token, for callback/original/followup
    status: int = 200
    at: float = field(default_factory=time.monotonic)  # when the emulator answered it


@dataclass
class Message:
    id: int
    channel_id: int
    author: dict[str, Any]
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    files: list[Upload] = field(default_factory=list)
    flags: int = 0
    token: str | None = None  # the interaction whose response or follow-up this is
    deleted: bool = False
    edits: int = 0
    pinged: set[str] = field(default_factory=set)  # "user:<id>", "role:<id>", "everyone": who was notified

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    def custom_ids(self) -> list[str]:
        return [
            c["custom_id"] for row in self.components for c in row.get("components", []) if "custom_id" in c
        ]

    def payload(self, base_url: str) -> dict[str, Any]:
        attachments = [
            {
                "id": str(self.id + i + 1),
                "filename": upload.filename,
                "size": len(upload.data),
                "url": f"{base_url}/attachments/{self.id}/{i}/{upload.filename}",
                "proxy_url": f"{base_url}/attachments/{self.id}/{i}/{upload.filename}",
                "content_type": upload.content_type,
            }
            for i, upload in enumerate(self.files)
        ]
        return {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "type": 0,
            "author": self.author,
            "content": self.content,
            "embeds": self.embeds,
            "attachments": attachments,
            "components": self.components,
            "flags": self.flags,
            "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "tts": False,
            "pinned": False,
        }


@dataclass
class Interaction:
    id: int
    token: str
    type: int
    payload: dict[str, Any]
    original_id: int | None = None  # the message its response created
    response_type: int | None = None
    modal: dict[str, Any] | None = None  # the modal it was answered with (response type 9)


@dataclass
class _RateLimit:
    route: str
    times: int
    retry_after: float
    is_global: bool


def user_payload(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
    }


class DiscordEmulator:
    """The emulator's state; `start()` serves REST and the gateway on a free port of 127.0.0.1."""

    def __init__(self, attachment_size_limit: int = 10 * 1024 * 1024, shards: int = 1) -> None:
        self.application_id = snowflake()
        self.bot_user = user_payload(snowflake(), "imagebot", bot=True)
        self.guild_id = snowflake()
        self.channel_id = snowflake()  # a plain text channel
        self.nsfw_channel_id = snowflake()  # an age-restricted one
        self.dm_channel_id = snowflake()
        self.attachment_size_limit = attachment_size_limit
        self.calls: list[Call] = []
        self.rejected: list[Call] = []  # calls answered with 429
        self.messages: dict[int, Message] = {}
        self.interactions: dict[str, Interaction] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id → the last bulk overwrite
        self.uploads: dict[str, Upload] = {}  # files users attached to commands
        self.roles: dict[int, str] = {}  # the guild's roles besides @everyone: id → name
        self.role_permissions: dict[int, int] = {}  # id → the role's guild-wide permissions
        self.mod_role = self._new_role("Moderators", MANAGE_MESSAGES)
        self.admin_role = self._new_role("Managers", MANAGE_GUILD)
        self.dm_channels: dict[int, int] = {}  # user id → their DM channel (POST /users/@me/channels)
        self.closed_dms: set[int] = set()  # users who take no DMs from the bot
        self.shards = shards
        self.identifies = 0
        self.identified_shards: list[tuple[int, int]] = []  # the `shard` of every IDENTIFY, in order
        self.resumes = 0
        self.gateway_attempts = 0  # websocket connections asked for, held ones included
        self.gateway_paths: list[str] = []  # the path of each, "/gateway" or "/gateway-resume"
        self._rate_limits: list[_RateLimit] = []
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_shards: dict[web.WebSocketResponse, int] = {}
        self._session_shards: dict[str, int] = {}
        self._gateway_open = asyncio.Event()
        self._gateway_open.set()
        self._sequence = 0
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway-resume", self._gateway)  # READY's resume_gateway_url
        app.router.add_get("/attachments/{path:.+}", self._attachment)
        app.router.add_route("*", API_PREFIX + "/{path:.+}", self._rest)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._gateway_open.set()
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests call ------------------------------------------------------------------------------------

    def rate_limit(
        self, route: str, times: int = 1, retry_after: float = 0.05, is_global: bool = False
    ) -> None:
        """Answer the next `times` calls to `route` (see Call.route) with 429."""
        self._rate_limits.append(_RateLimit(route, times, retry_after, is_global))

    def add_attachment(self, filename: str, data: bytes, content_type: str = "image/png") -> str:
        """A file a user attached; returns its URL."""
        name = f"{snowflake()}-{filename}"
        self.uploads[name] = Upload(filename, content_type, data)
        return f"{self.base_url}/attachments/{name}"

    async def wait_for(self, predicate: Callable[[], Any], within_s: float = 10.0) -> Any:
        """Wait until predicate() returns something truthy, and return it."""
        async with asyncio.timeout(within_s), self._changed:
            while not (value := predicate()):
                await self._changed.wait()
            return value

    async def wait_connected(self, within_s: float = 10.0) -> None:
        await self.wait_for(lambda: self.identifies + self.resumes > 0 and self._sockets, within_s)

    def calls_for(self, token: str, route: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.token == token and (route is None or c.route == route)]

    def original(self, token: str) -> Message | None:
        interaction = self.interactions.get(token)
        if interaction is None or interaction.original_id is None:
            return None
        return self.messages.get(interaction.original_id)

    async def result(self, token: str, within_s: float = 10.0) -> Message:
        """The interaction's reply once it carries a result: a file other than the live preview the bot shows
        while rendering ("preview.jpg", which a slow render gets first)."""

        def delivered() -> Message | None:
            message = self.original(token)
            if message is None or not any(f.filename != LIVE_PREVIEW_FILE for f in message.files):
                return None
            return message

        found: Message = await self.wait_for(delivered, within_s)
        return found

    def followups(self, token: str) -> list[Message]:
        original = self.interactions[token].original_id
        return [m for m in self.messages.values() if m.token == token and m.id != original and not m.deleted]

    def channel_messages(self, channel_id: int) -> list[Message]:
        return [m for m in self.messages.values() if m.channel_id == channel_id and m.token is None]

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        channel_id: int | None = None,
        attachments: dict[str, str] | None = None,
        guild: bool = True,
        subcommand: str | None = None,
        roles: tuple[int, ...] = (),
        overwrite: int = 0,
        shard: int | None = None,
    ) -> Interaction:
        """Dispatch a slash command; `attachments` maps an attachment option to a URL from add_attachment.

        `subcommand` is "ban" or "block add" for a command group; a UserOption value is a picked user;
        `roles` are the member's (in a guild) and `overwrite` the permissions a channel overwrite allows them
        here; `shard` the connection it arrives on (default: the guild's shard, or shard 0 for a DM).
        """
        resolved: dict[str, Any] = {}
        opts: list[dict[str, Any]] = []
        for name_, value in (options or {}).items():
            if isinstance(value, UserOption):
                user = user_payload(value.user_id, f"user{value.user_id}")
                resolved.setdefault("users", {})[str(value.user_id)] = user
                if guild:
                    member = _member(None, value.roles, self.channel_permissions(value.roles))
                    resolved.setdefault("members", {})[str(value.user_id)] = member
                opts.append({"name": name_, "type": 6, "value": str(value.user_id)})
            else:
                opts.append({"name": name_, "type": _option_type(value), "value": value})
        for option, url in (attachments or {}).items():
            attachment_id = snowflake()
            upload = self.uploads[url.rsplit("/", 1)[-1]]
            resolved.setdefault("attachments", {})[str(attachment_id)] = {
                "id": str(attachment_id),
                "filename": upload.filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": upload.content_type,
                **_image_size(upload),
            }
            opts.append({"name": option, "type": 11, "value": str(attachment_id)})
        for part in reversed((subcommand or "").split()):
            opts = [{"name": part, "type": 1 if not opts or opts[0]["type"] != 1 else 2, "options": opts}]
        data = {"id": str(snowflake()), "name": name, "type": 1, "options": opts, "resolved": resolved}
        return await self._dispatch_interaction(
            APPLICATION_COMMAND,
            data,
            user_id,
            channel_id,
            guild,
            member=(self.channel_permissions(roles, overwrite), roles),
            shard=shard,
        )

    async def autocomplete(
        self, name: str, options: dict[str, Any], focused: str, *, user_id: int, guild: bool = True
    ) -> list[dict[str, Any]]:
        """The user types in option `focused` of command `name`: the choices the bot answers with (type 8)."""
        opts = [
            {
                "name": key,
                "type": _option_type(value),
                "value": value,
                **({"focused": True} if key == focused else {}),
            }
            for key, value in options.items()
        ]
        data = {"id": str(snowflake()), "name": name, "type": 1, "options": opts}
        interaction = await self._dispatch_interaction(AUTOCOMPLETE, data, user_id, None, guild)
        answer = await self.wait_for(
            lambda: next((c for c in self.calls_for(interaction.token, "callback")), None), within_s=10
        )
        assert answer.payload["type"] == 8, answer.payload
        choices: list[dict[str, Any]] = answer.payload["data"]["choices"]
        return choices

    async def message_command(
        self, name: str, message: Message, *, user_id: int, channel_id: int | None = None
    ) -> Interaction:
        data = {
            "id": str(snowflake()),
            "name": name,
            "type": 3,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): message.payload(self.base_url)}},
        }
        return await self._dispatch_interaction(APPLICATION_COMMAND, data, user_id, channel_id, True)

    async def click(
        self,
        message: Message,
        custom_id: str,
        *,
        user_id: int,
        roles: tuple[int, ...] = (),
        overwrite: int = 0,
        forged: bool = False,
    ) -> Interaction:
        """Press a button on a message the bot sent (`roles` and `overwrite` as for `slash`).

        With `forged`, the custom_id need not be on the message (a modified client, or a stale one)."""
        assert forged or custom_id in message.custom_ids(), f"{custom_id} is not on message {message.id}"
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._dispatch_interaction(
            MESSAGE_COMPONENT,
            data,
            user_id,
            message.channel_id,
            message.channel_id != self.dm_channel_id,
            message=message.payload(self.base_url),
            member=(self.channel_permissions(roles, overwrite), roles),
        )

    async def submit_modal(
        self, answered: Interaction, values: dict[str, str] | None = None, *, user_id: int
    ) -> Interaction:
        """The user submits the modal `answered` was answered with: each text input's value from `values`
        (by custom_id), else the value it was prefilled with. Returns the MODAL_SUBMIT interaction."""
        modal = answered.modal
        assert modal is not None, "that interaction was not answered with a modal"
        inputs = [
            component
            for row in modal.get("components", [])
            for component in (row.get("components") or [row.get("component") or row])
            if component.get("type") == 4
        ]
        rows = [
            {
                "type": 1,
                "components": [
                    {
                        "type": 4,
                        "custom_id": field["custom_id"],
                        "value": (values or {}).get(field["custom_id"], field.get("value") or ""),
                    }
                ],
            }
            for field in inputs
        ]
        data = {"custom_id": modal["custom_id"], "components": rows}
        channel_id = int(answered.payload["channel"]["id"])
        return await self._dispatch_interaction(
            MODAL_SUBMIT,
            data,
            user_id,
            channel_id,
            "guild_id" in answered.payload,
            message=answered.payload.get("message"),
        )

    async def add_role(self, name: str, permissions: int = 0) -> int:
        """A role of the guild (announced to a connected bot with GUILD_ROLE_CREATE); returns its id."""
        role_id = self._new_role(name, permissions)
        for socket in list(self._sockets):
            await self._send_dispatch(
                socket,
                "GUILD_ROLE_CREATE",
                {"guild_id": str(self.guild_id), "role": self._role(role_id, name)},
            )
        return role_id

    def _new_role(self, name: str, permissions: int) -> int:
        role_id = snowflake()
        self.roles[role_id] = name
        self.role_permissions[role_id] = permissions
        return role_id

    def channel_permissions(self, roles: tuple[int, ...], overwrite: int = 0) -> int:
        """What Discord sends as the member's `permissions`: @everyone's and the roles', then the overwrite."""
        permissions = MEMBER_PERMISSIONS
        for role in roles:
            permissions |= self.role_permissions.get(role, 0)
        return permissions | overwrite

    def dm_messages(self, user_id: int) -> list[Message]:
        """What the bot sent to the user's DMs."""
        channel_id = self.dm_channels.get(user_id)
        return self.channel_messages(channel_id) if channel_id is not None else []

    @property
    def guild_shard(self) -> int:
        """The shard Discord routes the guild's events to."""
        return (self.guild_id >> 22) % self.shards

    async def drop_gateway(self, hold: bool = False) -> None:
        """Close the bot's gateway connections (it reconnects and resumes).

        With `hold`, new connections wait (no HELLO) until `reopen_gateway()`: the bot stays disconnected.
        """
        if hold:
            self._gateway_open.clear()
        for socket in list(self._sockets):
            await socket.close(code=4000)

    def reopen_gateway(self) -> None:
        self._gateway_open.set()

    def user_message(
        self, channel_id: int, files: list[Upload], content: str = "", user_id: int = 1
    ) -> Message:
        """A message from a user (for the "Vary this image" context menu)."""
        message = Message(
            snowflake(), channel_id, user_payload(user_id, f"user{user_id}"), content, files=files
        )
        self.messages[message.id] = message
        return message

    # -- gateway --------------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        self.gateway_attempts += 1
        self.gateway_paths.append(request.path)
        await self._notify()
        await self._gateway_open.wait()
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for frame in socket:
            data = json.loads(frame.data)
            op = data["op"]
            if op == 1:
                await socket.send_str(json.dumps({"op": 11}))
            elif op == 2:
                await self._ready(socket, data["d"])
            elif op == 6:
                self._socket_shards[socket] = self._session_shards.get(data["d"]["session_id"], 0)
                self._sockets.append(socket)
                self.resumes += 1
                await self._send_dispatch(socket, "RESUMED", {})
                await self._notify()
        with contextlib.suppress(ValueError):
            self._sockets.remove(socket)
        self._socket_shards.pop(socket, None)
        await self._notify()
        return socket

    async def _ready(self, socket: web.WebSocketResponse, identify: dict[str, Any]) -> None:
        shard = identify.get("shard") or [0, 1]
        session_id = f"session-{snowflake()}"
        has_guild = shard[0] == (self.guild_id >> 22) % shard[1]
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}] if has_guild else [],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url + "-resume",
            "application": {"id": str(self.application_id), "flags": 0},
            "shard": shard,
        }
        self._session_shards[session_id] = shard[0]
        self._socket_shards[socket] = shard[0]
        self._sockets.append(socket)
        self.identifies += 1
        self.identified_shards.append((shard[0], shard[1]))
        await self._send_dispatch(socket, "READY", ready)
        if has_guild:
            await self._send_dispatch(socket, "GUILD_CREATE", self._guild())
        await self._notify()

    def _guild(self) -> dict[str, Any]:
        def channel(channel_id: int, name: str, nsfw: bool) -> dict[str, Any]:
            return {
                "id": str(channel_id),
                "type": 0,
                "name": name,
                "position": 0,
                "nsfw": nsfw,
                "guild_id": str(self.guild_id),
                "permission_overwrites": [],
            }

        return {
            "id": str(self.guild_id),
            "name": "Emulated guild",
            "icon": None,
            "owner_id": "1",
            "unavailable": False,
            "member_count": 3,
            "large": False,
            "features": [],
            "emojis": [],
            "stickers": [],
            "members": [],
            "voice_states": [],
            "presences": [],
            "threads": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "roles": [
                self._role(self.guild_id, "@everyone", MEMBER_PERMISSIONS),
                *(self._role(role_id, name) for role_id, name in self.roles.items()),
            ],
            "channels": [
                channel(self.channel_id, "general", False),
                channel(self.nsfw_channel_id, "art", True),
            ],
        }

    def _role(self, role_id: int, name: str, permissions: int | None = None) -> dict[str, Any]:
        if permissions is None:
            permissions = self.role_permissions.get(role_id, 0)
        return {
            "id": str(role_id),
            "name": name,
            "permissions": str(permissions),
            "position": 0 if role_id == self.guild_id else 1,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
        }

    async def _send_dispatch(self, socket: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        await socket.send_str(json.dumps({"op": 0, "t": event, "s": self._sequence, "d": data}))

    async def _dispatch_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user_id: int,
        channel_id: int | None,
        guild: bool,
        message: dict[str, Any] | None = None,
        member: tuple[int, tuple[int, ...]] = (MEMBER_PERMISSIONS, ()),
        shard: int | None = None,
    ) -> Interaction:
        if not self._sockets:
            await self.wait_connected()
        wanted = shard if shard is not None else (self.guild_shard if guild else 0)
        sockets = [s for s in self._sockets if self._socket_shards.get(s, 0) == wanted]
        if not sockets and shard is None:
            sockets = self._sockets
        assert sockets, f"no gateway connection for shard {wanted}"
        interaction_id = snowflake()
        token = f"itoken-{interaction_id}"
        user = user_payload(user_id, f"user{user_id}")
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": "2147483647",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild:
            channel = channel_id or self.channel_id
            payload |= {
                "guild_id": str(self.guild_id),
                "context": 0,
                "channel": {
                    "id": str(channel),
                    "type": 0,
                    "guild_id": str(self.guild_id),
                    "name": "general",
                    "nsfw": channel == self.nsfw_channel_id,
                    "position": 0,
                    "permission_overwrites": [],
                },
                "member": _member(user, member[1], member[0]),
            }
        else:
            payload |= {
                "context": 1,
                "user": user,
                "channel": {"id": str(self.dm_channel_id), "type": 1, "recipients": [user]},
            }
        if message is not None:
            payload["message"] = message
        interaction = Interaction(interaction_id, token, kind, payload)
        self.interactions[token] = interaction
        await self._send_dispatch(sockets[-1], "INTERACTION_CREATE", payload)
        return interaction

    # -- REST -----------------------------------------------------------------------------------------------

    async def _attachment(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if path in self.uploads:
            upload = self.uploads[path]
        else:
            message_id, index, _ = path.split("/", 2)
            upload = self.messages[int(message_id)].files[int(index)]
        return web.Response(body=upload.data, content_type=upload.content_type)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        route, handler = self._route(request.method, path)
        payload, files = await _read_body(request)
        token = _token_in(path)
        for limit in self._rate_limits:
            if limit.route == route and limit.times > 0:
                limit.times -= 1
                self.rejected.append(Call(request.method, route, path, payload, files, token, 429))
                return _too_many(limit)
        status, body = handler(request, path, payload, files)
        self.calls.append(Call(request.method, route, path, payload, files, token, status))
        await self._notify()
        if body is None:
            return web.Response(status=204)
        return _json(status, body)

    def _route(self, method: str, path: str) -> tuple[str, Any]:
        routes: list[tuple[str, str, str, Any]] = [
            ("GET", r"/users/@me", "login", self._me),
            ("GET", r"/oauth2/applications/@me", "login", self._application),
            ("GET", r"/gateway/bot", "login", self._gateway_bot),
            ("PUT", r"/applications/\d+(?:/guilds/\d+)?/commands", "commands", self._bulk_commands),
            ("GET", r"/applications/\d+(?:/guilds/\d+)?/commands", "commands", self._list_commands),
            ("POST", r"/interactions/\d+/[^/]+/callback", "callback", self._callback),
            ("GET", r"/webhooks/\d+/[^/]+/messages/[^/]+", "original", self._get_webhook_message),
            ("PATCH", r"/webhooks/\d+/[^/]+/messages/[^/]+", "original", self._edit_webhook_message),
            ("DELETE", r"/webhooks/\d+/[^/]+/messages/[^/]+", "original", self._delete_webhook_message),
            ("POST", r"/webhooks/\d+/[^/]+", "followup", self._followup),
            ("POST", r"/users/@me/channels", "dm", self._create_dm),
            ("POST", r"/channels/\d+/messages", "channel", self._channel_message),
            ("DELETE", r"/channels/\d+/messages/\d+", "channel", self._delete_channel_message),
        ]
        for verb, pattern, route, handler in routes:
            if verb == method and re.fullmatch(pattern, path):
                return route, handler
        return "unknown", self._unknown

    def _me(self, *_: Any) -> tuple[int, Any]:
        return 200, self.bot_user

    def _application(self, *_: Any) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": "imagebot",
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": user_payload(1, "owner"),
            "summary": "",
            "rpc_origins": [],
        }

    def _gateway_bot(self, *_: Any) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": self.shards, "session_start_limit": limit}

    def _bulk_commands(self, request: web.Request, path: str, payload: Any, _: Any) -> tuple[int, Any]:
        scope = path.split("/guilds/")[1].split("/", maxsplit=1)[0] if "/guilds/" in path else "global"
        commands = [
            {
                "description": "",
                "options": [],
                **command,
                "id": str(snowflake()),
                "application_id": str(self.application_id),
                "version": "1",
            }
            for command in payload["_list"]
        ]
        self.commands[scope] = commands
        return 200, commands

    def _list_commands(self, request: web.Request, path: str, *_: Any) -> tuple[int, Any]:
        scope = path.split("/guilds/")[1].split("/", maxsplit=1)[0] if "/guilds/" in path else "global"
        return 200, self.commands.get(scope, [])

    def _callback(
        self, request: web.Request, path: str, payload: Any, files: list[Upload]
    ) -> tuple[int, Any]:
        token = path.split("/")[3]
        interaction = self.interactions.get(token)
        if interaction is None:
            return 404, {"message": "Unknown interaction", "code": 10062}
        if interaction.response_type is not None:
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        kind = payload["type"]
        interaction.response_type = kind
        data = payload.get("data") or {}
        message: Message | None = None
        channel_id = int(interaction.payload["channel"]["id"])
        if kind in (4, 5):  # a message, or "thinking…" to be edited later
            message = self._new_message(channel_id, data, files, token)
            interaction.original_id = message.id
        elif kind == 7 and "message" in interaction.payload:  # edit the message the button is on
            message = self.messages[int(interaction.payload["message"]["id"])]
            _apply(message, data, files)
        elif kind == 9:  # a modal: the user fills it in (submit_modal)
            interaction.modal = data
        body: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(data.get("flags", 0) & EPHEMERAL),
            },
            "resource": {"type": kind},
        }
        if message is not None:
            body["interaction"]["response_message_id"] = str(message.id)
            body["resource"]["message"] = message.payload(self.base_url)
        return 200, body

    def _webhook_message(self, path: str) -> tuple[Interaction | None, Message | None]:
        parts = path.split("/")
        interaction = self.interactions.get(parts[3])
        if interaction is None:
            return None, None
        target = parts[5]
        message_id = interaction.original_id if target == "@original" else int(target)
        message = self.messages.get(message_id) if message_id is not None else None
        if message is None or message.deleted or (message.token != interaction.token):
            return interaction, None
        return interaction, message

    def _get_webhook_message(self, request: web.Request, path: str, *_: Any) -> tuple[int, Any]:
        message = self._webhook_message(path)[1]
        if message is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        return 200, message.payload(self.base_url)

    def _edit_webhook_message(
        self, request: web.Request, path: str, payload: Any, files: list[Upload]
    ) -> tuple[int, Any]:
        interaction, message = self._webhook_message(path)
        if interaction is None:
            return 401, {"message": "Invalid Webhook Token", "code": 50027}
        if message is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        _apply(message, payload, files)
        return 200, message.payload(self.base_url)

    def _delete_webhook_message(self, request: web.Request, path: str, *_: Any) -> tuple[int, Any]:
        message = self._webhook_message(path)[1]
        if message is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        message.deleted = True
        return 204, None

    def _followup(
        self, request: web.Request, path: str, payload: Any, files: list[Upload]
    ) -> tuple[int, Any]:
        token = path.split("/")[3]
        interaction = self.interactions.get(token)
        if interaction is None or interaction.response_type is None:
            return 404, {"message": "Unknown Webhook", "code": 10015}
        message = self._new_message(int(interaction.payload["channel"]["id"]), payload, files, token)
        return 200, message.payload(self.base_url)

    def _channel_message(
        self, request: web.Request, path: str, payload: Any, files: list[Upload]
    ) -> tuple[int, Any]:
        channel_id = int(path.split("/")[2])
        if request.headers.get("Authorization") != f"Bot {BOT_TOKEN}":
            return 401, {"message": "401: Unauthorized", "code": 0}
        if any(self.dm_channels.get(user) == channel_id for user in self.closed_dms):
            return 403, {"message": "Cannot send messages to this user", "code": 50007}
        message = self._new_message(channel_id, payload, files, None)
        return 200, message.payload(self.base_url)

    def _create_dm(self, request: web.Request, path: str, payload: Any, _: Any) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bot {BOT_TOKEN}":
            return 401, {"message": "401: Unauthorized", "code": 0}
        user_id = int(payload["recipient_id"])
        channel_id = self.dm_channels.setdefault(user_id, snowflake())
        user = user_payload(user_id, f"user{user_id}")
        return 200, {"id": str(channel_id), "type": 1, "recipients": [user], "last_message_id": None}

    def _delete_channel_message(self, request: web.Request, path: str, *_: Any) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bot {BOT_TOKEN}":
            return 401, {"message": "401: Unauthorized", "code": 0}
        message = self.messages.get(int(path.split("/")[4]))
        if message is None or message.deleted or message.channel_id != int(path.split("/")[2]):
            return 404, {"message": "Unknown Message", "code": 10008}
        if message.flags & EPHEMERAL:
            return 404, {"message": "Unknown Message", "code": 10008}  # only the webhook sees those
        message.deleted = True
        return 204, None

    def _unknown(self, request: web.Request, path: str, *_: Any) -> tuple[int, Any]:
        return 404, {"message": f"emulator: no route for {request.method} {path}", "code": 0}

    def _new_message(
        self, channel_id: int, data: dict[str, Any], files: list[Upload], token: str | None
    ) -> Message:
        message = Message(snowflake(), channel_id, self.bot_user, token=token)
        _apply(message, data, files)
        message.edits = 0
        self.messages[message.id] = message
        return message

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(?:everyone|here)\b")


def _pings(content: str, allowed: dict[str, Any] | None) -> set[str]:
    """Who a message's content notifies, as Discord decides it: with no `allowed_mentions`, every mention
    pings; with one, only the kinds in its `parse` list and the users and roles it names."""
    parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
    named_users = {str(user) for user in (allowed or {}).get("users", [])}
    named_roles = {str(role) for role in (allowed or {}).get("roles", [])}
    pinged = {f"user:{u}" for u in _USER_MENTION.findall(content) if "users" in parse or u in named_users}
    pinged |= {f"role:{r}" for r in _ROLE_MENTION.findall(content) if "roles" in parse or r in named_roles}
    if "everyone" in parse and _EVERYONE.search(content):
        pinged.add("everyone")
    return pinged


def _apply(message: Message, data: dict[str, Any], files: list[Upload]) -> None:
    """Apply a create/edit payload the way Discord does: given fields replace, `attachments` keeps or drops.

    Mentions in new content are counted as pings on edits too (stricter than Discord, which notifies only for
    a message's first content), so a test sees any mention the bot let through."""
    if data.get("content"):
        message.pinged |= _pings(str(data["content"]), data.get("allowed_mentions"))
    for name in ("content", "embeds", "components", "flags"):
        if name in data and data[name] is not None:
            setattr(message, name, data[name])
        elif name in data:
            setattr(message, name, "" if name == "content" else ([] if name != "flags" else 0))
    if "attachments" in data:
        kept_ids = {str(a.get("id")) for a in data["attachments"]}
        # New uploads are listed with ids "0", "1"…; earlier ones by the id the emulator gave them.
        kept = [f for i, f in enumerate(message.files) if str(message.id + i + 1) in kept_ids]
        message.files = kept + files
    elif files:
        message.files = files
    message.edits += 1


def _member(user: dict[str, Any] | None, roles: tuple[int, ...], permissions: int) -> dict[str, Any]:
    member: dict[str, Any] = {
        "roles": [str(role) for role in roles],
        "joined_at": "2025-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": str(permissions),
    }
    if user is not None:
        member["user"] = user
    return member


def _image_size(upload: Upload) -> dict[str, int]:
    """An image attachment's width and height, as Discord reports them; nothing for other files."""
    if not upload.content_type.startswith("image/"):
        return {}
    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            return {"width": image.width, "height": image.height}
    except OSError:
        return {}


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


def _token_in(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) > 3 and parts[1] in ("interactions", "webhooks"):
        return parts[3]
    return None


def _too_many(limit: _RateLimit) -> web.Response:
    body = {
        "message": "You are being rate limited.",
        "retry_after": limit.retry_after,
        "global": limit.is_global,
    }
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(max(1, round(limit.retry_after))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": str(limit.retry_after),
        "X-RateLimit-Reset": str(time.time() + limit.retry_after),
        "X-RateLimit-Bucket": "emulated-bucket",
        "X-RateLimit-Scope": "global" if limit.is_global else "user",
    }
    if limit.is_global:
        headers["X-RateLimit-Global"] = "true"
    return _json(429, body, headers)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py parses JSON only when content-type is exactly application/json (no charset)."""
    headers = {**(headers or {}), "Content-Type": "application/json"}
    return web.Response(status=status, body=json.dumps(body).encode(), headers=headers)


async def _read_body(request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
    """JSON, or multipart with payload_json and files[n]; a JSON list body comes back as {"_list": [...]}."""
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] = {}
        files: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            else:
                data = await part.read()
                ctype = part.headers.get("Content-Type", "application/octet-stream")
                if ctype == "application/octet-stream":  # Discord sniffs the type, as does mimetypes here
                    ctype = mimetypes.guess_type(part.filename or "")[0] or ctype
                files.append(Upload(part.filename or "file", ctype, bytes(data)))
        return payload, files
    if not request.can_read_body:
        return {}, []
    raw = await request.read()
    if not raw:
        return {}, []
    data = json.loads(raw)
    return (data if isinstance(data, dict) else {"_list": data}), []
