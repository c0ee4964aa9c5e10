"""Keep secrets out of everything the process writes about itself: log records and tracebacks.

`configure_logging` (cli/main.py) builds one `Redactor` from the settings and installs it:

- as a filter on every handler of the root logger, so every record that reaches them — from any logger, one
  created later included, and from any library (httpx logs full Telegram URLs, which contain the bot token;
  discord.py logs interaction URLs and payloads; PTB logs setWebhook's secret at DEBUG) — has the secrets
  masked in its message, its traceback and its stack;
- as `sys.excepthook` and `threading.excepthook`, so an exception that ends the process is printed masked too
  (PTB's InvalidToken carries the whole token in its message).

What is masked: every `SecretStr` in the settings (bot tokens, the OpenAI key, the webhook secret…), the password
of any URL in them (a Redis URL), the ecosystem's secret variables (AWS_SECRET_ACCESS_KEY…), and anything shaped
like a Telegram bot token, a Discord interaction or webhook token, or a "token"/"secret_token"/"api_key" field in a
logged payload.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from types import TracebackType
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "<redacted>"
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words
ECOSYSTEM_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OPENAI_API_KEY")
PATTERNS = (
    re.compile(r"(bot)\d{5,}:[A-Za-z0-9_-]{30,}"),  # a Telegram bot token in a Bot API URL
    re.compile(
        r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}"
    ),  # Discord interaction/webhook tokens
    re.compile(r"""(['"](?:token|secret_token|api_key|password|access_token)['"]\s*:\s*['"])[^'"]+"""),
)
_TRACEBACKS = logging.Formatter()


def _secret_values(value: object) -> Iterator[str]:
    """Every secret in a settings object: SecretStr values, URL passwords, recursively."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)
    elif isinstance(value, str) and "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return
        if password:
            yield password


def _variants(secret: str) -> Iterator[str]:
    """The forms a secret may be logged in: as is, trimmed, URL-quoted, and a Telegram token's secret half."""
    for form in (secret, secret.strip()):
        yield form
        yield quote(form, safe="")
        _, colon, rest = form.partition(":")
        if colon and len(rest) >= 16:
            yield rest


class Redactor:
    """Replaces known secrets (and secret-shaped strings) in text with MASK."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets for form in _variants(secret) if len(form) >= MIN_SECRET_CHARS}
        self.secrets = tuple(sorted(forms, key=len, reverse=True))  # a token before its own secret half

    @classmethod
    def from_settings(cls, settings: BaseModel, environ: dict[str, str] | None = None) -> Redactor:
        environ = dict(os.environ) if environ is None else environ
        ecosystem = [environ[name] for name in ECOSYSTEM_SECRETS if environ.get(name)]
        return cls([*_secret_values(settings), *ecosystem])

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in PATTERNS:
            text = pattern.sub(rf"\1{MASK}", text)
        return text


class RedactingFilter(logging.Filter):
    """A handler filter: masks the record's message, traceback and stack before any formatter sees them."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself
            return True
        cleaned = self.redactor.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)  # formatters reuse exc_text
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


def install(redactor: Redactor, handlers: Iterable[logging.Handler] | None = None) -> RedactingFilter:
    """Put the filter on `handlers` (default: every handler of the root logger), replacing an earlier one."""
    redacting = RedactingFilter(redactor)
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redacting)
    return redacting


def mask_uncaught(redactor: Redactor) -> None:
    """Print exceptions that end the process (or a thread) with their secrets masked."""

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        sys.stderr.write(redactor.redact("".join(traceback.format_exception(kind, exc, tb))))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
