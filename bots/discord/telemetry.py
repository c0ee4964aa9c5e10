"""What Discord's API does to the bot, for /metrics: its errors by kind and the seconds spent on its 429s.

discord.py sends REST calls two ways: the bot's own through `HTTPClient.request`, and interaction replies and
follow-ups through the webhook adapter in `discord.webhook.async_` (a context variable picks the adapter).
`instrument` wraps the first and puts a counting adapter in the second, so every error Discord answers
(Forbidden, NotFound, DiscordServerError, RateLimited…) is counted in
imagebot_platform_api_errors_total{platform="discord"} as it reaches the bot. discord.py waits out a 429 itself
and says so in a warning ("… Retrying in 1.25 seconds."); `RateLimitWaits` reads the seconds from those records
into imagebot_rate_limit_wait_seconds_total.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from core import metrics

PLATFORM = "discord"


def _count(exc: discord.HTTPException) -> None:
    metrics.PLATFORM_ERRORS.labels(platform=PLATFORM, kind=type(exc).__name__).inc()


class CountingWebhookAdapter(AsyncWebhookAdapter):
    """discord.py's adapter for interaction webhooks, counting the errors it raises."""

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().request(*args, **kwargs)
        except discord.HTTPException as exc:
            _count(exc)
            raise


def instrument(client: discord.Client) -> None:
    """Count the errors of every REST call `client` makes, and of the interaction webhooks called from the
    current task and the tasks it starts (call it in the task that runs the client)."""
    http = client.http
    request = http.request

    async def counted(route: Any, **kwargs: Any) -> Any:
        try:
            return await request(route, **kwargs)
        except discord.HTTPException as exc:
            _count(exc)
            raise

    http.request = counted  # type: ignore[method-assign]
    if not isinstance(async_context.get(), CountingWebhookAdapter):
        async_context.set(CountingWebhookAdapter())


class RateLimitWaits(logging.Filter):
    """Adds the wait of each "… rate limited … Retrying in N seconds" record to the metric.

    The loggers it watches are kept at WARNING so that it sees those records whatever the log level; it lets
    through only what the `discord` logger's own level would have (IMAGEBOT_LOG_LEVEL=ERROR shows no warning).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if "Retrying in" in message and "rate limit" in message and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            seconds = next((a for a in reversed(args) if isinstance(a, int | float)), None)
            if seconds is not None:
                metrics.RATE_LIMIT_WAIT_SECONDS.labels(platform=PLATFORM).inc(float(seconds))
        return record.levelno >= logging.getLogger("discord").getEffectiveLevel()


_WAITS = RateLimitWaits()
WATCHED = ("discord.http", "discord.webhook.async_")


def watch_rate_limits() -> None:
    """Read discord.py's rate-limit warnings into the metric (once per process)."""
    for name in WATCHED:
        logger = logging.getLogger(name)
        if _WAITS not in logger.filters:
            logger.addFilter(_WAITS)
            if logger.getEffectiveLevel() > logging.WARNING:
                logger.setLevel(logging.WARNING)
