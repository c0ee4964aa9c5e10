"""The Discord app: the client, its endpoints, commands and persistent buttons, and the result consumer.

`run_discord_bot` is what `imagebot discord` calls. REST goes to `settings.discord.api_base` (a Discord REST
proxy, or an emulator in tests) and the gateway to `settings.discord.gateway_url` when set; both are process-
wide in discord.py (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY). A sharded client asks GET /gateway/bot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import yarl
from arq.connections import ArqRedis
from discord.gateway import DiscordWebSocket

from bots.discord.buttons import CoreButton, answer_modal, answer_unclaimed
from bots.discord.commands import ImagebotTree, build_tree
from bots.discord.context import IDENTIFY_INTERVAL_S, PROGRESS_INTERVAL_S, TOKEN_LIFETIME_S, BotContext
from bots.discord.delivery import Delivery
from bots.discord.forget import ForgetButton
from bots.discord.replies import NO_MENTIONS
from bots.discord.telemetry import instrument, watch_rate_limits
from core.delivery.events import STOP_GRACE_S, EventConsumer, consumer_for, stop_consuming
from core.delivery.tally import DailyTally
from core.errors import ConfigError
from core.governance.admin import AdminService
from core.models.request import Platform
from core.service import ImagineService
from core.settings import DiscordSettings, Settings
from core.tasks import cancel_and_wait, to_the_end
from moderation.factory import build_admin

log = logging.getLogger(__name__)


def intents() -> discord.Intents:
    """Only what slash commands and buttons need: guilds (channel NSFW flags). No privileged intents."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    return wanted


AddCheck = Callable[[str, Callable[[], Awaitable[str | None]]], None]


class _Lifecycle:
    """setup_hook/close shared by the plain and the sharded client."""

    def __init__(self, client: discord.Client, context: BotContext) -> None:
        self.client = client
        self.context = context
        self.delivery = Delivery(client, context)
        self.stop = asyncio.Event()
        self.consumer: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        self.client.add_dynamic_items(CoreButton, ForgetButton)
        if self.context.consume:
            settings = self.context.settings
            consumer = consumer_for(
                self.context.redis,
                Platform.DISCORD,
                settings.delivery,
                self.context.consumer_name,
                tally=DailyTally(self.context.redis, settings.retention.stats_s),
            )
            self.consumer = asyncio.create_task(self.consume(consumer), name="discord result consumer")

    async def consume(self, consumer: EventConsumer) -> None:
        log.info("delivering Discord results as consumer %s", consumer.consumer)
        await consumer.run(self.delivery.handle, self.stop)

    async def before_identify(self, initial: bool) -> None:
        """Space IDENTIFYs out (discord.py waits a fixed 5 s before every one but the first)."""
        if not initial:
            await asyncio.sleep(self.context.identify_interval_s)

    async def stop_consuming(self) -> None:
        """No new result is taken; the delivery in progress may finish within the grace period (so it is not sent
        again after a restart), then the consumer is cancelled."""
        if self.consumer is not None:
            await stop_consuming(self.consumer, self.stop, self.context.stop_grace_s)
            self.consumer = None

    async def close(self) -> None:
        await self.stop_consuming()
        await self.delivery.close()


class ImagebotClient(discord.Client):
    """The plain client; ShardedImagebotClient puts AutoShardedClient under the same hooks."""

    def __init__(self, context: BotContext, **options: Any) -> None:
        super().__init__(intents=intents(), allowed_mentions=NO_MENTIONS, **options)
        self.imagebot = context
        self.lifecycle = _Lifecycle(self, context)
        self.tree: ImagebotTree = build_tree(self, context.settings)

    async def setup_hook(self) -> None:
        await self.lifecycle.setup()

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Every interaction passes here too: a press no button takes is answered, and a submitted modal
        (Remix, a region's prompt, Custom Zoom) finishes its press (buttons.py)."""
        if interaction.type is discord.InteractionType.modal_submit:
            await answer_modal(interaction)
            return
        await answer_unclaimed(interaction)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await self.lifecycle.before_identify(initial)

    async def close(self) -> None:
        """The result consumer, then the gateway and HTTP session: to the end even if a second cancel (another
        SIGTERM) lands here, and the gateway is closed even when stopping the consumer failed."""
        await to_the_end(self._close())

    async def _close(self) -> None:
        try:
            await self.lifecycle.close()
        finally:
            await super().close()


class ShardedImagebotClient(ImagebotClient, discord.AutoShardedClient):
    """The same bot on AutoShardedClient (method order: these hooks, then the sharded client's)."""


def configure_endpoints(discord_settings: DiscordSettings) -> None:
    discord.http.Route.BASE = discord_settings.api_base.rstrip("/")
    if discord_settings.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(discord_settings.gateway_url)


def build_client(context: BotContext) -> ImagebotClient | ShardedImagebotClient:
    configure_endpoints(context.settings.discord)
    client_class = ShardedImagebotClient if context.settings.discord.sharded else ImagebotClient
    client = client_class(context)
    instrument(client)
    watch_rate_limits()
    return client


def gateway_check(client: discord.Client) -> Callable[[], Awaitable[str | None]]:
    """For /readyz: ready while the client is logged in, has had READY, and its gateway connection is open."""

    async def check() -> str | None:
        if client.is_closed() or not client.is_ready():
            return "gateway not connected"
        if isinstance(client, discord.AutoShardedClient):
            closed = [shard_id for shard_id, shard in client.shards.items() if shard.is_closed()]
            return f"gateway shards {closed} not connected" if closed else None
        ws = client.ws
        return None if ws is not None and ws.open else "gateway not connected"

    return check


def bot_token(settings: Settings) -> str:
    token = settings.discord.token.get_secret_value().strip() if settings.discord.token else ""
    if not token:
        raise ConfigError(
            "IMAGEBOT_DISCORD__TOKEN: the Discord bot needs its token; copy it from the Bot page of your "
            "application in the Discord developer portal."
        )
    return token


async def run_discord_bot(
    settings: Settings,
    service: ImagineService,
    redis: ArqRedis,
    *,
    sync: bool = False,
    consumer_name: str | None = None,
    token_lifetime_s: float = TOKEN_LIFETIME_S,
    progress_interval_s: float = PROGRESS_INTERVAL_S,
    identify_interval_s: float = IDENTIFY_INTERVAL_S,
    stop_grace_s: float = STOP_GRACE_S,
    admin: AdminService | None = None,
    add_check: AddCheck | None = None,
) -> None:
    """Run the bot until cancelled; with `sync`, publish the application commands and return.

    On cancel it stops in order (`_stop`): no new interactions, then the delivery in progress may finish within
    `stop_grace_s`, so it is neither cut short nor sent twice after a restart; then the connections close.

    `admin` runs the /admin commands; when None one is built over the same Redis, store and quotas as
    `service` (as cli/runtime.py does). `add_check("gateway", check)` registers the readiness of the gateway
    connection (cli/health.py's HealthServer.add_check).
    """
    token = bot_token(settings)
    context = BotContext(
        settings,
        service,
        redis,
        admin or build_admin(settings, service, redis),
        consumer_name=consumer_name,
        token_lifetime_s=token_lifetime_s,
        progress_interval_s=progress_interval_s,
        identify_interval_s=identify_interval_s,
        stop_grace_s=stop_grace_s,
        consume=not sync,
    )
    client = build_client(context)
    if add_check is not None:
        add_check("gateway", gateway_check(client))
    async with client:
        if sync:
            await client.login(token)
            commands = await client.tree.sync()
            log.info(
                "published %d application commands: %s", len(commands), ", ".join(c.name for c in commands)
            )
            return
        await client.login(token)  # setup_hook starts the result consumer
        gateway = asyncio.create_task(client.connect(), name="discord gateway")
        try:
            # Not `await gateway`: the bot's cancellation is for _stop to hand on, in order.
            await asyncio.wait({gateway})
            gateway.result()
        finally:
            await to_the_end(_stop(client, gateway))


async def _stop(client: ImagebotClient, gateway: asyncio.Task[None]) -> None:
    """Interactions first (the gateway is no longer read), then the result consumer with its grace period (its
    replies still go out over REST), then the gateway and HTTP connections.

    The gateway task also ends when the cancel meant for it is lost (Python 3.11's wait_for, around discord.py's
    connect, returns a result that came in with the cancel instead of raising it): closing the client ends
    discord.py's reconnect loop.
    """
    failed_before = gateway.done() and not gateway.cancelled() and gateway.exception() is not None
    gateway.cancel()
    if isinstance(client, discord.AutoShardedClient):  # its shards read the gateway in tasks of their own
        await asyncio.gather(*(shard.disconnect() for shard in client.shards.values()))
    await client.lifecycle.stop_consuming()
    await client.close()
    try:
        await cancel_and_wait(gateway)
    except Exception:
        if not failed_before:  # else it is raised already
            log.exception("the Discord gateway connection failed while the bot stopped")
