"""What every handler of the Telegram bot shares, built once at start-up: core's services, the user's defaults,
privileges, and the timings operators rarely change."""

from __future__ import annotations

from dataclasses import dataclass, field

from arq.connections import ArqRedis
from telegram import Bot, Chat, User

from bots.telegram.rate_limiter import RateLimits
from bots.telegram.requester import Privileges, requester_for
from core.delivery.delivery_log import DeliveryLog
from core.delivery.events import STOP_GRACE_S
from core.governance.admin import AdminService
from core.governance.preferences import PreferenceStore
from core.models.request import Requester
from core.service import ImagineService
from core.settings import Settings


@dataclass(frozen=True)
class Tuning:
    """Timings operators rarely change and tests shorten."""

    rate_limits: RateLimits = field(default_factory=RateLimits)
    progress_interval_s: float = 4.0  # at most one progress edit per status message this often
    preview_photo_min_left_s: float = 4.0  # a live preview's photo only for a render with this long left
    poll_timeout_s: int = 10  # getUpdates long-poll
    event_block_ms: int = 1000  # how long one read of the result stream waits (and a stop may wait)
    stop_grace_s: float = STOP_GRACE_S  # how long a stopping bot lets a delivery in progress finish
    concurrent_chats: int = 256  # chats whose updates are handled at once (each chat's one at a time)


@dataclass
class BotContext:
    settings: Settings
    service: ImagineService
    redis: ArqRedis
    admin: AdminService
    tuning: Tuning = field(default_factory=Tuning)

    def __post_init__(self) -> None:
        self.preferences = PreferenceStore(self.redis)
        self.privileges = Privileges(self.settings, self.redis)
        self.deliveries = DeliveryLog(self.redis)

    async def requester(self, bot: Bot, user: User, chat: Chat) -> Requester:
        """The Requester for an update, with the user's privilege in this chat."""
        standing = await self.privileges.standing(bot, user, chat)
        return requester_for(user, chat, standing.here)
