"""Updates by webhook: a small aiohttp listener that checks Telegram's secret-token header and hands each update
to the PTB Application's update queue.

PTB's own webhook server needs tornado (the `python-telegram-bot[webhooks]` extra); aiohttp is already one of
our dependencies. An update is answered 200 only once it has been handled (through the Application's update
processor, so one chat's updates still go one at a time): a bot killed mid-update never said "ok", so Telegram
sends the update again — to another replica behind the same URL — and the request id derived from the message
queues it once. Had it been answered on arrival, as PTB's own server does, a SIGKILL would lose it.

Telegram sends every update as a JSON POST to the configured URL with the header
`X-Telegram-Bot-Api-Secret-Token` set to the secret given to setWebhook; anything else is refused with 403.
The webhook is left set when the bot stops: another instance behind the same URL may still be serving it, and
Telegram keeps the updates it could not deliver until a bot is back.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
from collections.abc import Sequence
from urllib.parse import urlparse

from aiohttp import web
from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application

from core.errors import ConfigError

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts


def webhook_secret(configured: SecretStr | None) -> str:
    """The configured secret token, checked as Telegram would; a fresh random one when none is configured.

    Raises ConfigError naming the setting when the configured one would be refused by setWebhook.
    """
    if configured is None:
        return secrets.token_urlsafe(32)
    secret = configured.get_secret_value()
    if not SECRET_PATTERN.match(secret):
        raise ConfigError(
            "IMAGEBOT_TELEGRAM__WEBHOOK_SECRET: use 1 to 256 characters from A-Z, a-z, 0-9, _ and -."
        )
    return secret


def webhook_path(url: str) -> str:
    """The path Telegram will POST to, e.g. "/tg/hook" for "https://bot.example.org/tg/hook"."""
    return urlparse(url).path or "/"


class WebhookListener:
    """Serves the path of the public `url` on `listen`:`port`, between `start` and `stop`."""

    def __init__(self, application: Application, *, url: str, secret: str, listen: str, port: int) -> None:
        self.application = application
        self.url = url
        self.path = webhook_path(url)
        self.secret = secret
        self._secret = secret.encode()
        self.listen = listen
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self, allowed_updates: Sequence[str]) -> None:
        """Listen first, then tell Telegram where to send updates (so none arrives before we can take it)."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.listen, self.port).start()
            await self.application.bot.set_webhook(
                self.url, secret_token=self.secret, allowed_updates=list(allowed_updates)
            )
        except BaseException:
            await self.stop()
            raise
        log.info("Telegram updates by webhook on %s:%d%s", self.listen, self.port, self.path)

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning("webhook request from %s without the right secret token; refused", request.remote)
            return web.Response(status=403, text="wrong or missing secret token")
        try:
            data = json.loads(await request.read())
            if not isinstance(data, dict):
                raise TypeError("an update is a JSON object")
            update = Update.de_json(data, self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("webhook request with a body that is not an update; refused")
            return web.Response(status=400, text="not a Telegram update")
        await self._handle(update)
        return web.Response(text="ok")

    async def _handle(self, update: Update) -> None:
        """Handle the update in its chat's turn; returns once it was handled (PTB's error handlers saw errors)."""
        handled = asyncio.get_running_loop().create_future()

        async def process() -> None:
            try:
                await self.application.process_update(update)
            finally:
                if not handled.done():
                    handled.set_result(None)

        await self.application.update_processor.process_update(update, process())
        await handled  # a chat busy with earlier updates runs this one after them
