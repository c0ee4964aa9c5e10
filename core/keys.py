"""Every Redis key imagebot writes, in one inventory, each with how long it lives.

A template is a `str.format` pattern under `KEY_PREFIX` ("imagebot:request:{request_id}"); modules import it
from here and fill it in. Each entry also says how the key ends:

- `Expiry.TTL`: written with a TTL every time (the number is here too), so Redis drops it on its own;
- `Expiry.NONE`: kept until something deletes it, for the reason given (an admin's decision, a stream capped by
  length, a bounded per-queue list);
- `Expiry.WHEN_TIMED`: a TTL exactly when what it records has an end (a ban "for 2h"; a ban without an end has
  none).

arq keeps its own keys under `arq:` (listed in ARQ_KEYS) and two under our queue names (the queue itself and its
health check). tests/core/test_keys.py runs the end-to-end flows, SCANs Redis and holds every key to this list:
a key no template matches, or one whose template promises a TTL but has none, fails it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from core import constants as c


class Expiry(StrEnum):
    TTL = "ttl"
    NONE = "none"
    WHEN_TIMED = "when timed"


@dataclass(frozen=True)
class KeySpec:
    template: str  # a str.format pattern, e.g. "imagebot:request:{request_id}"
    kind: str  # the Redis type: string, list, set, zset, hash or stream
    expiry: Expiry
    lifetime: str  # how long it lives, and why

    @property
    def pattern(self) -> re.Pattern[str]:
        """Matches every key made from the template (a field is any non-empty text, colons included)."""
        parts = re.split(r"\{[a-z_]+\}", self.template)
        return re.compile(".+".join(re.escape(part) for part in parts) + r"\Z", re.DOTALL)

    @property
    def literal_chars(self) -> int:
        """How much of the template is fixed text: the most specific of several matching templates wins."""
        return len(re.sub(r"\{[a-z_]+\}", "", self.template))


INVENTORY: list[KeySpec] = []


def _key(template: str, kind: str, expiry: Expiry, lifetime: str) -> str:
    full = f"{c.KEY_PREFIX}:{template}"
    INVENTORY.append(KeySpec(full, kind, expiry, lifetime))
    return full


# -- lifetimes (seconds) -----------------------------------------------------------------------------------

# The defaults of settings.retention (requests_days, results_days): the services take theirs from settings.
REQUEST_TTL_S: Final = 30 * 24 * 3600  # buttons on a result work for a month
RESULT_TTL_S: Final = 30 * 24 * 3600
CACHE_TTL_S: Final = 30 * 24 * 3600
STATS_TTL_S: Final = 14 * 24 * 3600  # settings.retention.stats_days
FORGET_CONFIRM_TTL_S: Final = 10 * 60  # a /forget waits this long for its confirmation
STATS_SAMPLE_KEPT: Final = 1000  # stage durations kept per day and scope (a uniform sample of the day)
DELIVERED_TTL_S: Final = 7 * 24 * 3600  # longer than any redelivery of a stream entry
WORKER_HEARTBEAT_TTL_S: Final = 15  # a worker that stops beating is gone within this
FAIR_FINISH_TTL_S: Final = 2 * 24 * 3600  # a user idle this long starts afresh in the fair queue
USAGE_DAY_TTL_S: Final = 2 * 24 * 3600  # a day's counters outlive the UTC day they count
USAGE_HOUR_TTL_S: Final = 2 * 3600
PREVIEW_MESSAGE_TTL_S: Final = 2 * 24 * 3600  # Telegram lets a bot delete its messages for 48 hours
PREVIEW_ENDED_TTL_S: Final = 10 * 60  # longer than a late progress event of an ended request takes to arrive

# -- the job queue (arq) and what travels with it -------------------------------------------------------------

QUEUE_TEMPLATE: Final = _key(
    "queue:{queue}",
    "zset",
    Expiry.NONE,
    "arq's queue (constants.QUEUE_GPU, QUEUE_CLOUD): a job id leaves it when a worker takes it or it is "
    "cancelled, and an empty queue is no key at all",
)
HEALTH_CHECK_TEMPLATE: Final = _key(
    "queue:{queue}:health-check",
    "string",
    Expiry.TTL,
    "arq's worker health line: health_check_interval + 1 s",
)
REQUEST_KEY: Final = _key(
    "request:{request_id}",
    "string",
    Expiry.TTL,
    "settings.retention.requests_days (REQUEST_TTL_S): the GenerationRequest, for buttons and retries",
)
USER_REQUESTS_KEY: Final = _key(
    "requests-of:{owner}",
    "zset",
    Expiry.TTL,
    "settings.retention.requests_days from the latest request: every request id of a user (score: when), "
    "older ones trimmed on each add; what /forget deletes",
)
IMAGE_REFS_KEY: Final = _key(
    "refs:{key}",
    "set",
    Expiry.TTL,
    "the request ids whose results show a stored file; outlives every result that shows it "
    "(settings.retention.results_days)",
)
RESULT_KEY: Final = _key(
    "result:{request_id}",
    "string",
    Expiry.TTL,
    "settings.retention.results_days (RESULT_TTL_S): the terminal ResultEvent, for buttons",
)
CACHE_KEY: Final = _key(
    "cache:{digest}",
    "string",
    Expiry.TTL,
    "settings.retention.results_days (CACHE_TTL_S): a DONE event for an explicit seed's parameters",
)
CANCELLED_KEY: Final = _key(
    "cancelled:{request_id}",
    "string",
    Expiry.TTL,
    "settings.retention.requests_days: as long as the request could be redelivered",
)
PRESS_KEY: Final = _key(
    "press:{owner}:{button}",
    "string",
    Expiry.TTL,
    "what a user's last press of a button queued, while a repeat counts as the same press",
)
HISTORY_KEY: Final = _key(
    "history:{owner}",
    "zset",
    Expiry.TTL,
    "settings.retention.results_days from the latest result: a user's finished results (request id → when), the newest "
    "HISTORY_KEPT, for /history",
)
DESCRIBE_KEY: Final = _key(
    "describe:{request_id}",
    "string",
    Expiry.TTL,
    "REQUEST_TTL_S: a /describe request (core.commands.describe), for its job and its suggestion buttons",
)
RECENT_KEY: Final = _key(
    "recent:{owner}",
    "list",
    Expiry.TTL,
    "settings.retention.requests_days from the latest request; the last RECENT_KEPT ids",
)
DURATIONS_KEY: Final = _key(
    "durations:{queue}",
    "list",
    Expiry.NONE,
    "the last DURATIONS_KEPT job durations of a queue (for ETAs), trimmed on every push: one small list per "
    "queue, and an ETA needs it after any idle spell",
)
WORK_TIMES_KEY: Final = _key(
    "work-times:{queue}",
    "list",
    Expiry.NONE,
    "recent seconds per million pixel-steps, one list per queue, trimmed to WORK_TIMES_KEPT entries",
)
WORKER_KEY: Final = _key(
    "worker:{worker_id}", "string", Expiry.TTL, "WORKER_HEARTBEAT_TTL_S, refreshed by each heartbeat"
)
WORKER_KEY_PATTERN: Final = WORKER_KEY.format(worker_id="*")
WORKERS_INDEX_KEY: Final = _key(
    "workers",
    "zset",
    Expiry.TTL,
    "the live workers' ids scored by when their heartbeat lapses (ms), so routing reads them without a SCAN; "
    "WORKER_HEARTBEAT_TTL_S, refreshed by each heartbeat, lapsed members dropped by each heartbeat",
)
FAIR_VCLOCK_KEY: Final = _key(
    "fair:vclock:{queue}",
    "string",
    Expiry.NONE,
    "the queue's virtual clock for fair queueing: it may only move forward, or new jobs would jump the queue; "
    "one per queue",
)
FAIR_FINISH_KEY: Final = _key(
    "fair:finish:{queue}:{owner}", "string", Expiry.TTL, "FAIR_FINISH_TTL_S: a user's last virtual finish tag"
)
FAIR_TAKEN_KEY: Final = _key(
    "fair:taken:{queue}",
    "zset",
    Expiry.TTL,
    "the fair-queue scores handed out at or above the clock (ties broken by arrival); FAIR_FINISH_TTL_S",
)

# -- result events and their delivery ----------------------------------------------------------------------

EVENTS_STREAM: Final = _key(
    "events:{platform}",
    "stream",
    Expiry.NONE,
    "capped at EVENTS_MAXLEN entries; it carries the bots' consumer group and must outlive any bot downtime",
)
DEAD_EVENTS_STREAM: Final = _key(
    "events:dead:{platform}",
    "stream",
    Expiry.NONE,
    "events no delivery could handle, capped at EVENTS_MAXLEN entries, kept for operators to read",
)
DELIVERED_KEY: Final = _key(
    "delivered:{platform}:{event_id}", "string", Expiry.TTL, "DELIVERED_TTL_S: this result was replied to"
)
LEASE_SUFFIX: Final = ":lease"
DELIVERY_LEASE_KEY: Final = _key(
    "delivered:{platform}:{event_id}" + LEASE_SUFFIX,
    "string",
    Expiry.TTL,
    "the consumer's lease_ms while one consumer delivers a terminal event",
)
PREVIEW_MESSAGE_KEY: Final = _key(
    "preview_message:{platform}:{request_id}",
    "string",
    Expiry.TTL,
    "the chat message showing a request's live preview (core.delivery.preview_message): PREVIEW_MESSAGE_TTL_S, "
    "then PREVIEW_ENDED_TTL_S once the request ended",
)
MESSAGES_KEY: Final = _key(
    "messages:{request_id}",
    "list",
    Expiry.TTL,
    "settings.retention.results_days: where the result was posted, for /admin delete",
)

# -- governance: quotas, bans, communities, preferences, audit ---------------------------------------------------

USAGE_DAY_KEY: Final = _key(
    "usage:{scope}:{owner}:day:{day}", "string", Expiry.TTL, "USAGE_DAY_TTL_S: images counted for a UTC day"
)
USAGE_HOUR_KEY: Final = _key(
    "usage:user:{owner}:hour:{hour}", "string", Expiry.TTL, "USAGE_HOUR_TTL_S: images counted for an hour"
)
INFLIGHT_KEY: Final = _key(
    "inflight:{owner}", "zset", Expiry.TTL, "USAGE_DAY_TTL_S: request id → when its in-flight slot lapses"
)
BUDGET_KEY: Final = _key(
    "budget:paid:{day}",
    "string",
    Expiry.TTL,
    "USAGE_DAY_TTL_S: paid (OpenAI) spend on a UTC day, in 1/10000 USD (quotas.SPEND_UNITS_PER_USD)",
)
RESERVATION_KEY: Final = _key(
    "reservation:{request_id}",
    "hash",
    Expiry.TTL,
    "USAGE_DAY_TTL_S: reserved → committed | refunded, exactly once",
)
TIER_KEY: Final = _key(
    "tier:{owner}", "string", Expiry.NONE, "an owner's decision (/admin tier), in force until changed"
)
OVERRIDE_KEY: Final = _key(
    "quota-override:{owner}",
    "string",
    Expiry.NONE,
    "an owner's decision (/admin quota), in force until changed",
)
BAN_KEY: Final = _key(
    "ban:{scope}:{owner}",  # scope: a community key or "global"; owner "platform:id"
    "string",
    Expiry.WHEN_TIMED,
    "a timed ban expires with the ban; a ban without an end lasts until /admin unban",
)
BANS_OF_KEY: Final = _key(
    "bans-of:{owner}",
    "set",
    Expiry.NONE,
    "the scopes a user is banned in, for /admin usage; entries go with /admin unban or when read after expiry",
)
REFUSALS_KEY: Final = _key(
    "refusals:{scope}:{owner}",
    "zset",
    Expiry.TTL,
    "the refusal window (privileges.refusal_window_s): automatic bans, per scope",
)
POLICY_KEY: Final = _key(
    "policy:{community}",  # community = "platform:community_id"
    "string",
    Expiry.NONE,
    "a community's own rules (/admin policy), in force until its admins change them",
)
PAUSED_KEY: Final = _key(
    "paused:{community}", "string", Expiry.NONE, "set by /admin pause, deleted by /admin resume"
)
STYLES_KEY: Final = _key(
    "styles:{community}",
    "hash",
    Expiry.NONE,
    "a community's style presets (/admin style), name → JSON, kept until its moderators remove them",
)
BLOCKLIST_KEY: Final = _key(
    "blocklist:{community_id}",
    "set",
    Expiry.NONE,
    "a community's blocked terms (/admin block), kept until its moderators remove them",
)
PREFS_KEY: Final = _key(
    "prefs:{platform}:{user_id}", "string", Expiry.NONE, "a user's own /settings, kept until they change them"
)
AUDIT_STREAM: Final = _key(
    "audit",
    "stream",
    Expiry.NONE,
    "the audit trail: entries older than settings.retention.audit_days are trimmed as new ones come, and it is "
    "capped at AUDIT_MAXLEN entries (oldest go first)",
)
AUDIT_MAXLEN: Final = 1_000_000
COMMUNITY_AUDIT_STREAM: Final = _key(
    "audit:community:{community}",
    "stream",
    Expiry.NONE,
    "one community's audit trail, for its moderators: trimmed to settings.retention.audit_days, capped at "
    "COMMUNITY_AUDIT_MAXLEN entries",
)
COMMUNITY_AUDIT_MAXLEN: Final = 100_000
GENERATED_KEY: Final = _key(
    "generated:{request_id}",
    "string",
    Expiry.TTL,
    "USAGE_DAY_TTL_S: this request's successful generation is in the audit trail (written once, whatever the "
    "retries)",
)
FORGET_KEY: Final = _key(
    "forget:{token}", "string", Expiry.TTL, "FORGET_CONFIRM_TTL_S: a /forget waiting for its confirmation"
)

# -- /admin stats: one day's numbers, per scope ("all", or a community "platform:community_id") -------------------

STATS_KEY: Final = _key(
    "stats:{scope}:{day}",
    "hash",
    Expiry.TTL,
    "settings.retention.stats_days: a UTC day's counts (jobs by outcome, images, refusals by kind, paid spend, "
    "stage sample sizes)",
)
STATS_USERS_KEY: Final = _key(
    "stats:{scope}:{day}:users", "zset", Expiry.TTL, "settings.retention.stats_days: jobs per user that day"
)
STATS_STAGE_KEY: Final = _key(
    "stats:{scope}:{day}:stage:{stage}",
    "list",
    Expiry.TTL,
    "settings.retention.stats_days: a uniform sample (STATS_SAMPLE_KEPT at most) of a stage's seconds that day",
)

# -- front ends --------------------------------------------------------------------------------------------

DISCORD_TOKEN_KEY: Final = _key(
    "discord:token:{interaction_id}",
    "string",
    Expiry.TTL,
    "an interaction's token, kept only while Discord accepts it (15 minutes)",
)

TELEGRAM_CHAT_ADMINS_KEY: Final = _key(
    "tg:admins:{chat_id}",
    "string",
    Expiry.TTL,
    "privileges.telegram_admin_cache_s: a chat's administrators (not cached at all when that is 0)",
)

# -- arq's own keys (not ours to name; listed so the inventory is complete) ---------------------------------

ARQ_KEYS: Final = (
    KeySpec("arq:job:{job_id}", "string", Expiry.TTL, "the queued job: until its _expires (JOB_EXPIRES_S)"),
    KeySpec("arq:in-progress:{job_id}", "string", Expiry.TTL, "while a worker runs it: job timeout + 10 s"),
    KeySpec("arq:result:{job_id}", "string", Expiry.TTL, "the job's outcome: the worker's keep_result"),
    KeySpec("arq:retry:{job_id}", "string", Expiry.TTL, "how often it was tried: arq keeps it 88400 s"),
    KeySpec("arq:abort", "zset", Expiry.NONE, "arq's abort requests, trimmed by arq itself (we never abort)"),
)


def spec_for(key: str) -> KeySpec | None:
    """The inventory entry a Redis key was made from (the most specific, when several match), or None."""
    matches = [spec for spec in (*INVENTORY, *ARQ_KEYS) if spec.pattern.match(key)]
    return max(matches, key=lambda spec: spec.literal_chars, default=None)
