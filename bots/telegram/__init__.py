"""The Telegram front end (python-telegram-bot): a thin adapter over core.

app.py           run_telegram_bot: the PTB Application beside the result-event consumer
context.py       BotContext (what every handler shares) and Tuning
commands.py      /imagine, /img, plain text, photos, /start, /help, /cancel, /quota → core calls
buttons.py       result buttons (U/V/🔄/vary/upscale) → core's one dispatch, ImagineService.press
markup.py        inline keyboards from core's button ids
admin.py         /admin … → core's AdminService (user arguments from replies and mentions)
requester.py     who asked: a core Requester, with USER/MOD/ADMIN/OWNER from settings and chat status
progress.py      STARTED/PROGRESS → chat action and status edits, as core's progress coalescer allows
delivery.py      result events → photos, documents, status edits, notices; where they went → DeliveryLog
replies.py       the one place errors become messages
Telegram only:
preferences.py   /settings and its "st:" buttons
webhook.py       webhook mode: an aiohttp listener that checks the secret-token header
rate_limiter.py  flood control at PTB's seam: per-chat turns and pacing, 429 retry_after, bounded state
update_processor.py  updates of different chats at once, each chat's in order (PTB's update processor)
help_text.py     the /start and /help texts
"""

from bots.telegram.app import run_telegram_bot
from bots.telegram.context import Tuning

__all__ = ["Tuning", "run_telegram_bot"]
