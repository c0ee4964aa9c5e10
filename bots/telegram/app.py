"""`run_telegram_bot`: the PTB Application (long polling, or a webhook with a secret token) beside the
result-event consumer, until cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from arq.connections import ArqRedis
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    filters,
)
from telegram.ext import MessageHandler as OnMessage

from bots.telegram.admin import AdminCommands
from bots.telegram.buttons import ANSWERS, Buttons
from bots.telegram.commands import Commands
from bots.telegram.context import BotContext, Tuning
from bots.telegram.delivery import Delivery
from bots.telegram.forget import ForgetCommand
from bots.telegram.library import Library
from bots.telegram.preferences import CALLBACK_PATTERN, PreferencesMenu
from bots.telegram.rate_limiter import ChatRateLimiter
from bots.telegram.replies import report_error
from bots.telegram.update_processor import ChatOrderedProcessor
from bots.telegram.webhook import WebhookListener, webhook_secret
from core.commands.buttons import PREFIX as BUTTON_PREFIX
from core.delivery.events import consumer_for, stop_consuming
from core.delivery.tally import DailyTally
from core.errors import ConfigError
from core.governance.admin import AdminService
from core.governance.forget import BUTTON_PATTERN as FORGET_BUTTONS
from core.models.request import Platform
from core.service import ImagineService
from core.settings import Settings
from core.tasks import to_the_end

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
BOT_COMMANDS = [
    BotCommand("imagine", "make images: /imagine a lighthouse at dusk --ar 16:9"),
    BotCommand("settings", "your default aspect ratio, model and image count"),
    BotCommand("quota", "how many images you have left today"),
    BotCommand("loras", "the LoRA styles for --lora"),
    BotCommand("cancel", "cancel your last request while it waits"),
    BotCommand("describe", "prompts for a photo: send it captioned /describe, or reply to it"),
    BotCommand("history", "your recent results"),
    BotCommand("info", "how a result was made: reply to it with /info"),
    BotCommand("styles", "the --style presets you can use here"),
    BotCommand("help", "the options, with examples"),
    BotCommand("forget", "delete everything I keep about you"),
]
# Shown to chat administrators in every group, and to the owners and configured moderators in private.
ADMIN_COMMANDS = [*BOT_COMMANDS, BotCommand("admin", "moderators' commands: ban, quota, pause, queue…")]
IMAGINE_CAPTION = r"^/(imagine|img)(@\w+)?(\s|$)"
DESCRIBE_CAPTION = r"^/describe(@\w+)?(\s|$)"
CHECK_COMMAND = r"^/admin(@\w+)?\s+check\b"
PICTURES = filters.PHOTO | filters.Document.ALL


def build_application(settings: Settings, imagebot: BotContext) -> Application:
    token = settings.telegram.token
    if token is None or not token.get_secret_value().strip():
        raise ConfigError(
            "IMAGEBOT_TELEGRAM__TOKEN: set the bot token from @BotFather to run the Telegram bot."
        )
    application = (
        ApplicationBuilder()
        .token(token.get_secret_value().strip())
        .base_url(settings.telegram.base_url)
        .base_file_url(settings.telegram.base_file_url)
        .rate_limiter(ChatRateLimiter(imagebot.tuning.rate_limits))
        .concurrent_updates(ChatOrderedProcessor(imagebot.tuning.concurrent_chats))
        .build()
    )
    commands, buttons, menu = Commands(imagebot), Buttons(imagebot), PreferencesMenu(imagebot)
    admin, library = AdminCommands(imagebot), Library(imagebot)
    application.add_handler(CommandHandler(["imagine", "img"], commands.imagine))
    application.add_handler(
        OnMessage(filters.PHOTO & filters.CaptionRegex(IMAGINE_CAPTION), commands.imagine)
    )
    application.add_handler(CommandHandler("start", commands.start))
    application.add_handler(CommandHandler("help", commands.help))
    application.add_handler(CommandHandler("cancel", commands.cancel))
    application.add_handler(CommandHandler("quota", commands.quota))
    application.add_handler(CommandHandler("styles", library.styles))
    application.add_handler(CommandHandler("history", library.history))
    application.add_handler(CommandHandler("info", library.info))
    application.add_handler(CommandHandler("describe", library.describe))
    application.add_handler(OnMessage(PICTURES & filters.CaptionRegex(DESCRIBE_CAPTION), library.describe))
    application.add_handler(OnMessage(PICTURES & filters.CaptionRegex(CHECK_COMMAND), library.on_check_photo))
    application.add_handler(OnMessage(filters.Regex(CHECK_COMMAND), library.on_check_photo))
    application.add_handler(CommandHandler("loras", commands.loras))
    application.add_handler(CommandHandler("admin", admin.admin))
    application.add_handler(CommandHandler("settings", menu.show))
    application.add_handler(CallbackQueryHandler(buttons.on_press, pattern=rf"^{BUTTON_PREFIX}:"))
    application.add_handler(CallbackQueryHandler(menu.on_choice, pattern=CALLBACK_PATTERN))
    forget = ForgetCommand(imagebot)
    application.add_handler(CommandHandler("forget", forget.forget))
    application.add_handler(CallbackQueryHandler(forget.on_press, pattern=FORGET_BUTTONS))
    application.add_handler(CallbackQueryHandler(buttons.on_unknown))  # every query is answered
    application.add_handler(OnMessage(ANSWERS, buttons.on_answer))  # replies to a question: before prompts
    application.add_handler(
        OnMessage(filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, commands.plain_text)
    )
    application.add_error_handler(_on_error)
    return application


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything a handler let through: the user still hears back, the log has the traceback."""
    error = context.error or RuntimeError("unknown error")
    if not isinstance(update, Update):
        log.error("Telegram update processing failed", exc_info=error)
        return
    message = update.effective_message
    await report_error(
        error,
        context.bot,
        query=update.callback_query,
        chat_id=message.chat.id if message else None,
        reply_to=message.message_id if message else None,
    )


async def _set_commands(bot: Bot, settings: Settings) -> None:
    """The command menu: everyone's commands, plus /admin for chat administrators and the configured ids.

    A configured user who never opened a private chat with the bot can't get a per-chat menu; that is
    logged and skipped.
    """
    await bot.set_my_commands(ADMIN_COMMANDS, scope=BotCommandScopeAllChatAdministrators())
    configured = settings.privileges
    prefix = f"{Platform.TELEGRAM.value}:"
    ids = [owner.removeprefix(prefix) for owner in settings.owners if owner.startswith(prefix)]
    ids += [*configured.telegram_admins, *configured.telegram_mods]
    for user_id in dict.fromkeys(i for i in ids if i.lstrip("-").isdigit()):
        try:
            await bot.set_my_commands(ADMIN_COMMANDS, scope=BotCommandScopeChat(int(user_id)))
        except TelegramError as exc:
            log.info("no /admin menu in the private chat of %s (%s)", user_id, exc.message)
    await bot.set_my_commands(BOT_COMMANDS, scope=BotCommandScopeDefault())


def _webhook_listener(application: Application, settings: Settings) -> WebhookListener | None:
    """The webhook listener when a public URL is configured (None: long polling)."""
    config = settings.telegram
    if not config.webhook_url:
        return None
    return WebhookListener(
        application,
        url=config.webhook_url,
        secret=webhook_secret(config.webhook_secret),
        listen=config.webhook_listen,
        port=config.webhook_port,
    )


async def _start_updates(application: Application, tuning: Tuning, webhook: WebhookListener | None) -> None:
    if webhook is not None:
        await webhook.start(ALLOWED_UPDATES)
        return
    updater = application.updater
    assert updater is not None
    # start_polling deletes any webhook first (Telegram refuses getUpdates while one is set).
    await updater.start_polling(timeout=tuning.poll_timeout_s, allowed_updates=ALLOWED_UPDATES)
    log.info("Telegram bot polling for updates")


AddCheck = Callable[[str, Callable[[], Awaitable[str | None]]], None]


def updates_check(
    application: Application, webhook: WebhookListener | None
) -> Callable[[], Awaitable[str | None]]:
    """For /readyz: ready while updates come in (the webhook listens, or long polling runs)."""

    async def check() -> str | None:
        if not application.running:
            return "not started"
        if webhook is not None:
            return None if webhook.running else "webhook not listening"
        updater = application.updater
        return None if updater is not None and updater.running else "not polling Telegram"

    return check


async def run_telegram_bot(
    settings: Settings,
    service: ImagineService,
    redis: ArqRedis,
    *,
    admin: AdminService,
    consumer_name: str | None = None,
    tuning: Tuning | None = None,
    add_check: AddCheck | None = None,
) -> None:
    """Run the Telegram bot until cancelled: updates in, result events out; a clean shutdown on cancel.

    `admin` runs /admin (cli/runtime.py builds it over the same Redis, store and quotas as `service`).
    Raises ConfigError("IMAGEBOT_TELEGRAM__TOKEN: …") without a token. Secrets are kept out of the logs by
    the process's root log handlers (cli/redaction.py), not here. `add_check("gateway", check)` registers
    whether updates come in, for /readyz (cli/health.py's HealthServer.add_check).
    """
    imagebot = BotContext(settings, service, redis, admin, tuning or Tuning())
    tuning = imagebot.tuning
    application = build_application(settings, imagebot)
    webhook = _webhook_listener(application, settings)  # checks the secret before anything starts
    if add_check is not None:
        add_check("gateway", updates_check(application, webhook))
    delivery = Delivery(imagebot, application.bot)
    consumer = consumer_for(
        redis,
        Platform.TELEGRAM,
        settings.delivery,
        consumer_name,
        tally=DailyTally(redis, settings.retention.stats_s),
    )
    stop = asyncio.Event()
    # Whatever has started is stopped on the way out, newest first, each step even when one before it failed, and
    # to the end even when a second cancel (another SIGTERM) lands in the shutdown: a poller left running would
    # go on taking messages from a bot that is gone.
    started = AsyncExitStack()
    try:
        # Last on the way out: PTB refuses to shut a running application down.
        started.push_async_callback(application.shutdown)
        await application.initialize()
        await _set_commands(application.bot, settings)
        started.push_async_callback(_stop_application, application)
        await application.start()
        started.push_async_callback(delivery.close)
        consuming = asyncio.create_task(
            consumer.run(delivery.handle, stop, block_ms=tuning.event_block_ms), name="telegram-results"
        )
        started.push_async_callback(stop_consuming, consuming, stop, tuning.stop_grace_s)
        started.push_async_callback(_stop_updates, application, webhook)  # first: no new messages
        await _start_updates(application, tuning, webhook)
        log.info("Telegram bot @%s is up", application.bot.username)
        # Not `await consuming`: the bot's cancellation would reach the consumer in the middle of a delivery,
        # which stop_consuming gives its grace period first.
        await asyncio.wait({consuming})
        consuming.result()
    finally:
        await to_the_end(started.aclose())
        log.info("Telegram bot stopped")


async def _stop_updates(application: Application, webhook: WebhookListener | None) -> None:
    if webhook is not None:
        await webhook.stop()
    updater = application.updater
    if updater is not None and updater.running:  # also after a start_polling that was cut short
        await updater.stop()


async def _stop_application(application: Application) -> None:
    if application.running:
        await application.stop()
