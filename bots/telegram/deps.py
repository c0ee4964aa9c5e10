"""What every Telegram handler needs, built once at start-up and shared."""

from __future__ import annotations

from dataclasses import dataclass, field

from arq.connections import ArqRedis

from bots.telegram.last_request import LastRequests
from bots.telegram.pacing import Pacer, PacingLimits
from core.preferences import PreferenceStore
from core.service import ImagineService
from core.settings import Settings


@dataclass(frozen=True)
class Tuning:
    """Timings operators rarely change and tests shorten."""

    pacing: PacingLimits = field(default_factory=PacingLimits)
    progress_interval_s: float = 4.0  # at most one progress edit per chat this often
    poll_timeout_s: int = 10  # getUpdates long-poll
    event_block_ms: int = 1000  # how long one read of the result stream waits (and a stop may wait)
    stop_grace_s: float = 5.0  # how long a stopping bot lets a delivery in progress finish


@dataclass
class BotDeps:
    settings: Settings
    service: ImagineService
    redis: ArqRedis
    tuning: Tuning
    pacer: Pacer
    prefs: PreferenceStore
    last_requests: LastRequests

    @classmethod
    def build(cls, settings: Settings, service: ImagineService, redis: ArqRedis, tuning: Tuning) -> BotDeps:
        return cls(
            settings,
            service,
            redis,
            tuning,
            Pacer(tuning.pacing),
            PreferenceStore(redis),
            LastRequests(redis),
        )
