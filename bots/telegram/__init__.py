"""The Telegram front end (python-telegram-bot): a thin adapter over core.

app.py               run_telegram_bot: the PTB Application beside the result-event consumer
commands.py          /imagine, /img, plain text, photos, /start, /help, /cancel, /quota → core calls
admin_commands.py    /admin … → core's AdminService (user arguments from replies and mentions)
privilege.py         USER/MOD/ADMIN/OWNER from settings and chat administrator status (cached)
callbacks.py         result buttons (U/V/🔄/vary/upscale)
preferences_menu.py  /settings and its "st:" buttons
delivery.py          result events → photos, documents, status edits, notices; where they went → DeliveryLog
progress.py          STARTED/PROGRESS → chat action and status edits, at most one per interval per chat
webhook.py           webhook mode: an aiohttp listener that checks the secret-token header
keyboards.py         inline keyboards from core's button ids
pacing.py            per-chat pacing and 429 retry_after
replies.py           the one place errors become messages
"""

from bots.telegram.app import run_telegram_bot
from bots.telegram.deps import Tuning

__all__ = ["Tuning", "run_telegram_bot"]
