"""What every Telegram handler needs, built once at start-up and shared."""

from __future__ import annotations

from dataclasses import dataclass, field

from arq.connections import ArqRedis
from telegram import Bot, Chat, User

from bots.telegram.pacing import Pacer, PacingLimits
from bots.telegram.privilege import Privileges
from bots.telegram.requester import requester_for
from core.delivery.delivery_log import DeliveryLog
from core.governance.admin import AdminService
from core.governance.preferences import PreferenceStore
from core.models.request import Requester
from core.service import ImagineService
from core.settings import Settings
from moderation.factory import build_admin


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
    admin: AdminService
    privileges: Privileges
    deliveries: DeliveryLog

    @classmethod
    def build(
        cls,
        settings: Settings,
        service: ImagineService,
        redis: ArqRedis,
        tuning: Tuning,
        admin: AdminService | None = None,
    ) -> BotDeps:
        return cls(
            settings,
            service,
            redis,
            tuning,
            Pacer(tuning.pacing),
            PreferenceStore(redis),
            admin or build_admin(settings, service, redis),
            Privileges(settings, redis),
            DeliveryLog(redis),
        )

    async def requester(self, bot: Bot, user: User, chat: Chat) -> Requester:
        """The Requester for an update, with the user's privilege in this chat."""
        standing = await self.privileges.standing(bot, user, chat)
        return requester_for(user, chat, standing.here)
