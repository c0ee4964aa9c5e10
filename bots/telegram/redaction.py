"""Keep the bot token out of logs: Telegram URLs contain it, and httpx logs every URL at INFO."""

from __future__ import annotations

import logging

HTTP_LOGGERS = ("httpx", "httpcore")
MASK = "<telegram-token>"


class TokenRedactor(logging.Filter):
    """Rewrites any record that contains the token, replacing the token with a mask."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, MASK), None
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, MASK)
        return True


def protect_token(token: str) -> None:
    """Quiet the HTTP client loggers to WARNING and mask the token in them and in PTB's loggers."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    names = [*HTTP_LOGGERS, "telegram"]
    names += [name for name in logging.root.manager.loggerDict if name.startswith("telegram.")]
    for name in names:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, TokenRedactor)]:
            logger.removeFilter(old)
        logger.addFilter(TokenRedactor(token))
