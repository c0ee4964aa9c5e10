"""Platform-neutral privilege levels, ordered and compared with >=.

Each front end computes the platform's view once per request (Discord permissions or roles, Telegram chat
administrator status or configured ids) and puts it on the Requester; `effective_privilege` adds the owners from
settings. Every check in core is `privilege >= Privilege.MOD` (or ADMIN, OWNER) against that one value.
"""

from __future__ import annotations

from enum import IntEnum

from core.errors import NotAllowed


class Privilege(IntEnum):
    USER = 0
    MOD = 1
    ADMIN = 2
    OWNER = 3


def effective_privilege(
    platform: str, user_id: str, platform_level: Privilege, owners: list[str]
) -> Privilege:
    """The platform's level, raised to OWNER for the "platform:user_id" entries in settings.owners."""
    if f"{platform}:{user_id}" in owners:
        return Privilege.OWNER
    return platform_level


def require(level: Privilege, needed: Privilege, action: str) -> None:
    if level < needed:
        raise NotAllowed(f"Only {needed.name.lower()}s can {action}.")
