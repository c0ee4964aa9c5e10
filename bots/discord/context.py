"""What every handler of the Discord bot shares: core's service, the user's defaults, and delivery timings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import discord
from arq.connections import ArqRedis

from core.delivery.delivery_log import DeliveryLog
from core.delivery.events import STOP_GRACE_S
from core.governance.admin import AdminService
from core.governance.preferences import PreferenceStore
from core.service import ImagineService
from core.settings import Settings

TOKEN_LIFETIME_S = 14 * 60  # interaction tokens live 15 minutes; keep a minute in hand
PROGRESS_INTERVAL_S = 1.5  # at most one progress edit per reply this often
IDENTIFY_INTERVAL_S = 5.0  # between IDENTIFYs of a sharded bot (Discord allows one per 5 s per bucket)
ACK_WAIT_S = 5.0  # how long a result waits for the "queued" edit of its own command to land


class Acknowledgements:
    """Interactions (by id) whose "queued" edit is still in flight, so a fast result never lands before it."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Event] = {}

    def begin(self, interaction_id: str) -> None:
        self._pending.setdefault(interaction_id, asyncio.Event())

    def end(self, interaction_id: str) -> None:
        event = self._pending.pop(interaction_id, None)
        if event is not None:
            event.set()

    def pending(self, interaction_id: str) -> bool:
        return interaction_id in self._pending

    async def wait(self, interaction_id: str, within_s: float = ACK_WAIT_S) -> None:
        event = self._pending.get(interaction_id)
        if event is not None:
            try:
                async with asyncio.timeout(within_s):
                    await event.wait()
            except TimeoutError:
                pass


@dataclass
class BotContext:
    settings: Settings
    service: ImagineService
    redis: ArqRedis
    admin: AdminService
    consumer_name: str | None = None  # None: IMAGEBOT_DELIVERY__CONSUMER, else discord-<hostname>
    token_lifetime_s: float = TOKEN_LIFETIME_S
    progress_interval_s: float = PROGRESS_INTERVAL_S
    identify_interval_s: float = IDENTIFY_INTERVAL_S
    stop_grace_s: float = STOP_GRACE_S  # how long a stopping bot lets a delivery in progress finish
    consume: bool = True  # False for `--sync`: publish the commands, deliver nothing
    acks: Acknowledgements = field(default_factory=Acknowledgements)

    @property
    def preferences(self) -> PreferenceStore:
        return PreferenceStore(self.redis)

    @property
    def deliveries(self) -> DeliveryLog:
        return DeliveryLog(self.redis)


def context_of(interaction: discord.Interaction) -> BotContext:
    """The BotContext of the client that received this interaction."""
    context = getattr(interaction.client, "imagebot", None)
    if not isinstance(context, BotContext):
        raise RuntimeError("this interaction did not come through the imagebot Discord client")
    return context
