"""Wire names: everything that crosses a process boundary is spelled here and only here.

Redis keys, arq job and queue names, and the prefixes of button ids (Discord custom_id, Telegram
callback_data) change only together with every process that reads them.
"""

from typing import Final

KEY_PREFIX: Final = "imagebot"

# arq queues (sorted sets) and the one job function they carry.
QUEUE_GPU: Final = f"{KEY_PREFIX}:queue:gpu"
QUEUE_CLOUD: Final = f"{KEY_PREFIX}:queue:cloud"
JOB_GENERATE: Final = "generate"

# Stored requests, results and bookkeeping.
REQUEST_KEY: Final = f"{KEY_PREFIX}:request:{{request_id}}"
RESULT_KEY: Final = f"{KEY_PREFIX}:result:{{request_id}}"
CACHE_KEY: Final = f"{KEY_PREFIX}:cache:{{digest}}"
DURATIONS_KEY: Final = f"{KEY_PREFIX}:durations:{{queue}}"
WORKER_KEY: Final = f"{KEY_PREFIX}:worker:{{worker_id}}"
WORKER_KEY_PATTERN: Final = f"{KEY_PREFIX}:worker:*"
BLOCKLIST_KEY: Final = f"{KEY_PREFIX}:blocklist:{{community_id}}"  # per-community blocked terms
RECENT_KEY: Final = f"{KEY_PREFIX}:recent:{{owner}}"  # a user's latest request ids
MESSAGES_KEY: Final = f"{KEY_PREFIX}:messages:{{request_id}}"  # where a front end delivered a result
RECENT_KEPT: Final = 20
CANCELLED_KEY: Final = f"{KEY_PREFIX}:cancelled:{{request_id}}"
DISCORD_TOKEN_KEY: Final = f"{KEY_PREFIX}:discord:token:{{interaction_id}}"  # an interaction's token, 15 min

# Result events: one stream per platform, read through a consumer group.
EVENTS_STREAM: Final = f"{KEY_PREFIX}:events:{{platform}}"
EVENTS_GROUP: Final = "bots"
DEAD_EVENTS_STREAM: Final = f"{KEY_PREFIX}:events:dead:{{platform}}"  # events no delivery could handle
DELIVERED_KEY: Final = f"{KEY_PREFIX}:delivered:{{platform}}:{{event_id}}"

# Lifetimes (seconds).
REQUEST_TTL_S: Final = 30 * 24 * 3600
RESULT_TTL_S: Final = 30 * 24 * 3600
CACHE_TTL_S: Final = 30 * 24 * 3600
DELIVERED_TTL_S: Final = 7 * 24 * 3600
WORKER_HEARTBEAT_TTL_S: Final = 15
EVENTS_MAXLEN: Final = 100_000
DURATIONS_KEPT: Final = 50
STALE_JOB_S: Final = 6 * 3600  # a job that waited longer is reported as dropped rather than rendered

# Button actions; a button id is f"{ACTION}:{request_id}:{index}" (≤ 64 bytes for Telegram).
ACTION_UPSCALE: Final = "u"
ACTION_VARY: Final = "v"
ACTION_REROLL: Final = "r"
ACTION_VARY_STRONG: Final = "vs"
ACTION_VARY_SUBTLE: Final = "vl"
ACTION_UPSCALE_2X: Final = "x2"
