"""Keep secrets out of logs: discord.py logs request URLs and, at DEBUG, gateway payloads, and both carry an
interaction's token (valid for 15 minutes, enough to post as the bot in that channel); the bot token is masked
too."""

from __future__ import annotations

import logging
import re

WEBHOOK_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}")
PAYLOAD_TOKEN = re.compile(r"""(['"]token['"]:\s*['"])[^'"]+""")  # gateway payloads logged at DEBUG
MASK = "<redacted>"


class DiscordSecretFilter(logging.Filter):
    def __init__(self, bot_token: str) -> None:
        super().__init__()
        self.bot_token = bot_token

    def _clean(self, text: str) -> str:
        if self.bot_token:
            text = text.replace(self.bot_token, MASK)
        return PAYLOAD_TOKEN.sub(rf"\1{MASK}", WEBHOOK_TOKEN.sub(rf"\1{MASK}", text))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def protect_secrets(bot_token: str) -> None:
    """Install the filter on every discord.py logger (filters don't pass from a parent logger to its children)."""
    names = ["discord", *(name for name in logging.root.manager.loggerDict if name.startswith("discord."))]
    for name in names:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, DiscordSecretFilter)]:
            logger.removeFilter(old)
        logger.addFilter(DiscordSecretFilter(bot_token))
