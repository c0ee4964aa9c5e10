"""What every handler of the web front end shares, built once at start-up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web
from arq.connections import ArqRedis

from bots.web.hub import Hub
from core.commands.links import link_secret
from core.service import ImagineService
from core.settings import Settings


@dataclass(frozen=True)
class Tuning:
    """Timings operators rarely change and tests shorten."""

    event_block_ms: int = 1000  # how long one read of the result stream waits (and a stop may wait)
    keepalive_s: float = 15.0  # a comment line on idle event streams, so proxies keep them open
    stop_grace_s: float = 3.0


@dataclass
class WebContext:
    settings: Settings
    service: ImagineService
    redis: ArqRedis
    tuning: Tuning = field(default_factory=Tuning)
    hub: Hub = field(default_factory=Hub)

    def __post_init__(self) -> None:
        configured = link_secret(self.settings)
        # The embedded default has no secret: sessions are signed with one made now (they end with the process).
        self.secret = configured or secrets.token_urlsafe(32)
        self.community = configured is not None  # visitors come with signed links; no local user

    @property
    def secure_cookies(self) -> bool:
        return (self.settings.web.public_url or "").startswith("https://")


CONTEXT: web.AppKey[WebContext] = web.AppKey("imagebot", WebContext)
