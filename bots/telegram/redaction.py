"""Keep the bot token out of logs: Telegram URLs contain it, and httpx logs every URL at INFO.

The webhook's secret token is masked too: PTB logs every Bot API call's parameters at DEBUG, setWebhook's
included.
"""

from __future__ import annotations

import logging

HTTP_LOGGERS = ("httpx", "httpcore")
MASK = "<telegram-token>"


class TokenRedactor(logging.Filter):
    """Rewrites any record that contains the token (or another secret), replacing it with a mask."""

    def __init__(self, token: str, *others: str) -> None:
        super().__init__()
        self.token = token
        self.secrets = tuple(s for s in (token, *others) if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, MASK)
            record.msg, record.args = message, None
        for secret in self.secrets:
            if record.exc_text and secret in record.exc_text:
                record.exc_text = record.exc_text.replace(secret, MASK)
        return True


def protect_token(token: str, *others: str) -> None:
    """Quiet the HTTP client loggers to WARNING and mask the token (and `others`: the webhook secret) in them
    and in PTB's loggers."""
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
        logger.addFilter(TokenRedactor(token, *others))
