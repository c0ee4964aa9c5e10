"""Wire names: everything that crosses a process boundary is spelled here and only here.

Redis keys (core.keys holds every key template, with its lifetime), arq job and queue names, and the prefixes
of button ids (Discord custom_id, Telegram callback_data) change only together with every process that reads them.
"""

from typing import Final

KEY_PREFIX: Final = "imagebot"  # every Redis key we name starts with "imagebot:" (core.keys)

# arq queues (sorted sets, listed in core.keys as QUEUE_TEMPLATE) and the one job function they carry.
QUEUE_GPU: Final = f"{KEY_PREFIX}:queue:gpu"
QUEUE_CLOUD: Final = f"{KEY_PREFIX}:queue:cloud"
JOB_GENERATE: Final = "generate"
JOB_DESCRIBE: Final = "describe"  # an image → four prompt suggestions (core.commands.describe)
CAPTIONER: Final = "captioner"  # a GPU worker's heartbeat lists this among its models when it can /describe

# Result events: one stream per platform (core.keys.EVENTS_STREAM), read through this consumer group.
EVENTS_GROUP: Final = "bots"

# Sizes of the keys that are capped by length rather than by time.
EVENTS_MAXLEN: Final = 100_000
DURATIONS_KEPT: Final = 50
RECENT_KEPT: Final = 20
HISTORY_KEPT: Final = 200  # results per user in /history (core.delivery.history)
HISTORY_PAGE: Final = 4  # results per /history page (one button row each, and a row to page)
WORK_TIMES_KEPT: Final = 50
STALE_JOB_S: Final = 6 * 3600  # a job that waited longer is reported as dropped rather than rendered

# Button actions; a button id is "ib:<action>:<request_id>[:<index>[:<arg>]]" (≤ 64 bytes for Telegram).
ACTION_UPSCALE: Final = "u"
ACTION_VARY: Final = "v"
ACTION_REROLL: Final = "r"
ACTION_VARY_STRONG: Final = "vs"
ACTION_VARY_SUBTLE: Final = "vl"
ACTION_UPSCALE_2X: Final = "x2"
ACTION_INFO: Final = "i"  # /info on a result: how to make it again, and its provenance
ACTION_DELETE: Final = "dl"  # the owner deletes their own result
ACTION_SHOW: Final = "sh"  # show a result from /history again, with its buttons
ACTION_HISTORY_OLDER: Final = "ho"  # /history: the page after the result in the id
ACTION_HISTORY_NEWER: Final = "hn"  # /history: the page before the result in the id
ACTION_DESCRIBE: Final = "de"  # /describe image <index> of a result
ACTION_SUGGESTION: Final = "ds"  # imagine suggestion <index> of a /describe result
ACTION_UPSCALE_SUBTLE: Final = "us"  # super-resolution only
ACTION_UPSCALE_CREATIVE: Final = "uc"  # super-resolution, then a detail pass
ACTION_VARY_REGION: Final = "vr"  # opens the 3×3 region picker
ACTION_REGION_CELL: Final = "rc"  # arg: the picker's cells after this toggle (9 bits, hex)
ACTION_REGION_SUBMIT: Final = "rs"  # arg: the chosen cells; repaint them with the image's prompt
ACTION_REGION_PROMPT: Final = "rp"  # arg: the chosen cells; ask for the region's prompt first
ACTION_ZOOM: Final = "zo"  # arg: the zoom-out factor × 100 (110–200)
ACTION_ZOOM_CUSTOM: Final = "zc"  # asks for the factor
ACTION_PAN: Final = "pn"  # arg: l, r, u or d

# /forget's confirmation buttons: f"{FORGET_PREFIX}:{FORGET_YES or FORGET_NO}:{token}" (token: 16 base32 chars).
FORGET_PREFIX: Final = "fg"
FORGET_YES: Final = "y"
FORGET_NO: Final = "n"
