"""The Telegram front end (python-telegram-bot): a thin adapter over core.

app.py               run_telegram_bot: the PTB Application beside the result-event consumer
commands.py          /imagine, /img, plain text, photos, /start, /help, /cancel → core calls
callbacks.py         result buttons (U/V/🔄/vary/upscale)
preferences_menu.py  /settings and its "st:" buttons
delivery.py          result events → photos, documents and status edits
keyboards.py         inline keyboards from core's button ids
pacing.py            per-chat pacing and 429 retry_after
replies.py           the one place errors become messages
"""

from bots.telegram.app import run_telegram_bot
from bots.telegram.deps import Tuning

__all__ = ["Tuning", "run_telegram_bot"]
