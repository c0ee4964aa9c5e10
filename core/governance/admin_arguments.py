"""The arguments of `/admin` commands: users, durations and numbers, checked strictly with messages that say what
is allowed.

Numbers are ASCII digits only: str.isdigit() also accepts "²" and Persian or Arabic-Indic digits ("۱۲۳"), which
would ban an id no user has or crash int(). Durations are bounded (1 minute … 1 year), so "0m" can't mean
"forever" and "99999w" can't reach before the start of time.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from core.errors import InvalidRequest

MIN_DURATION_S = 60
MAX_DURATION_S = 365 * 86400
MAX_QUOTA = 1_000_000
MAX_USER_ID_DIGITS = 20  # Discord snowflakes have up to 20 digits; Telegram ids fewer
_DURATION = re.compile(r"^([0-9]{1,7})([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MENTION = re.compile(r"^<@!?([0-9]+)>$")
DURATION_HINT = "use a number and m, h, d or w, e.g. 30m, 2h, 7d or 1w, from 1 minute up to 1 year (52w)"

USAGE = {
    "ban": "ban <user> [for <duration, e.g. 2h>] [reason]",
    "unban": "unban <user>",
    "tier": "tier <user> <tier|default>",
    "quota": "quota <user> <images per day|default>",
    "usage": "usage <user>",
    "queue": "queue",
    "cancel": "cancel <request id>",
    "pause": "pause",
    "resume": "resume",
    "block": "block add <term> | block remove <term> | block list",
    "policy": "policy nsfw <refuse|spoiler|allow|default> | buttons <owner|everyone> | model <name> "
    "| logchannel <here|off>",
    "delete": "delete <request id> [image number]",
    "lora": "lora deny <name> | lora allow <name> | lora list",
    "audit": "audit [user <user>] [action <action>] [since <duration>]",
    "style": "style add <name> <template with {prompt}> [--no <terms>] | style remove <name> | style list",
    "check": "check (with an image attached, or in reply to one): its Content Credentials and watermark",
    "stats": "stats [here] [yesterday]",
}


def ascii_number(text: str) -> int | None:
    """The number written in ASCII digits 0-9, or None for anything else ("²", "۱۲۳", "-1", "1e3")."""
    return int(text) if text.isascii() and text.isdigit() else None


def looks_like_duration(word: str) -> bool:
    """Starts with a digit of any script: meant as a duration, so checked as one rather than taken as text."""
    return bool(word) and (word[0].isdigit() or word[0].isnumeric())


def parse_duration(text: str) -> float:
    """Seconds in a duration such as 30m, 2h, 7d or 1w, between 1 minute and 1 year."""
    word = text.strip().lower()
    match = _DURATION.match(word)
    if match is None:
        raise InvalidRequest("duration", f"“{text}” isn't a duration I understand; {DURATION_HINT}.")
    seconds = int(match[1]) * _UNITS[match[2]]
    if seconds < MIN_DURATION_S:
        raise InvalidRequest("duration", f"“{text}” is too short: a duration is at least 1 minute (1m).")
    if seconds > MAX_DURATION_S:
        raise InvalidRequest("duration", f"“{text}” is too long: a duration is at most 1 year (365d or 52w).")
    return float(seconds)


def user_token(platform: str, token: str) -> str:
    """A user argument ("123", "<@123>") as an owner id "platform:123"."""
    mention = _MENTION.match(token)
    user = mention[1] if mention else token
    digits = user.removeprefix("-")
    if ascii_number(digits) is None or len(digits) > MAX_USER_ID_DIGITS:
        raise InvalidRequest(
            "user",
            f"“{token}” isn't a user I can find; mention them or use their numeric id (digits 0-9).",
        )
    return f"{platform}:{user}"


def ban_terms(words: list[str]) -> tuple[float | None, str]:
    """(duration, reason) from what follows the user in `ban`: "for 2h spamming", "for spamming", "spamming"."""
    if len(words) >= 2 and words[0].lower() == "for" and looks_like_duration(words[1]):
        return parse_duration(words[1]), " ".join(words[2:])
    return None, " ".join(words)  # "for spamming" stays part of the reason


def quota_value(text: str) -> int | None:
    """Images per day (0 … 1,000,000), or None for "default" (back to the tier's)."""
    if text.lower() == "default":
        return None
    value = ascii_number(text)
    if value is None or value > MAX_QUOTA:
        raise InvalidRequest(
            "quota",
            f"“{text}” isn't a quota: give a number of images per day from 0 to {MAX_QUOTA:,} "
            "in digits 0-9, or “default” for their tier's.",
        )
    return value


def image_number(text: str, numbers: list[int]) -> int:
    """A 1-based image number that must be one of `numbers`; returns the 0-based index."""
    value = ascii_number(text)
    if value is None or value not in numbers:
        shown = ", ".join(str(number) for number in numbers) or "none left"
        raise InvalidRequest(
            "delete", f"“{text}” isn't one of that result's images; its images are: {shown}."
        )
    return value - 1


@dataclass(frozen=True)
class AuditQuery:
    user: str | None = None  # owner id
    action: str | None = None
    since: float | None = None  # a timestamp


def audit_query(platform: str, args: list[str]) -> AuditQuery:
    """`audit [user <user>] [action <action>] [since <duration>]`, in any order."""
    filters: dict[str, str] = {}
    for index in range(0, len(args) - 1, 2):
        filters[args[index].lower()] = args[index + 1]
    if set(filters) - {"user", "action", "since"} or len(args) % 2:
        raise InvalidRequest("audit", f"Usage: /admin {USAGE['audit']}")
    since = time.time() - parse_duration(filters["since"]) if "since" in filters else None
    user = user_token(platform, filters["user"]) if "user" in filters else None
    return AuditQuery(user, filters.get("action", "").lower() or None, since)
