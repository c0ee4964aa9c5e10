"""Signed links: how a chat user opens the web pages as themselves.

A link is `<public_url>/link/<token>`; the token is a `LinkClaims` (who, where their results go, what page, until
when) as base64url JSON, a dot, and its HMAC-SHA256 under the web secret (settings.web.secret), which the bots
and the web process share. It is bound to one platform user: the web pages act as that `Requester`, so they show
and change only what core lets that user see and change, and results asked for there go back to `reply_to`, the
chat the link came from. A link that was altered, signed with another secret, or is past `expires_at` is refused.

The link is a bearer credential for its lifetime: it carries no privilege above USER (a moderator's link
moderates nothing), and nothing logs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import TypeVar

from pydantic import Field, ValidationError

from core.errors import NotAllowed
from core.models.privileges import Privilege
from core.models.request import Frozen, Requester
from core.settings import Settings

PATH = "/link/"
PAGE_GALLERY = "gallery"
PAGE_CHAT = "chat"
REGION_PREFIX = "region:"  # "region:<request_id>:<index>"
EXPIRED = "This link has expired; ask the bot for a new one (/history, or Vary (Region) again)."
INVALID = "This link isn't valid; open the one the bot sent you, or ask the bot for a new one."


class Expiring(Frozen):
    expires_at: int  # unix time


E = TypeVar("E", bound=Expiring)


class LinkClaims(Expiring):
    requester: Requester
    reply_to: dict[str, str] = Field(default_factory=dict)
    page: str = PAGE_GALLERY  # "gallery", "chat" or "region:<request_id>:<index>"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signature(secret: str, payload: str, purpose: str = "link") -> str:
    """HMAC-SHA256 of `payload` under `secret`, separated by `purpose` (a link's MAC is never a cookie's)."""
    mac = hmac.new(secret.encode(), f"{purpose}\x00{payload}".encode(), hashlib.sha256)
    return _b64(mac.digest())


def sign(claims: Expiring, secret: str, purpose: str = "link") -> str:
    """`claims` as a token: base64url JSON, a dot, its MAC (the web's session cookie is one too)."""
    payload = _b64(claims.model_dump_json(exclude_defaults=True).encode())
    return f"{payload}.{signature(secret, payload, purpose)}"


def verify(
    token: str,
    secret: str,
    model: type[E],
    *,
    now: float | None = None,
    purpose: str = "link",
) -> E:
    """The claims of a token signed with `secret` for `purpose` and not expired; NotAllowed otherwise."""
    payload, _, mac = token.partition(".")
    if not payload or not hmac.compare_digest(mac.encode(), signature(secret, payload, purpose).encode()):
        raise NotAllowed(INVALID)
    try:
        claims = model.model_validate_json(_unb64(payload))
    except (ValidationError, ValueError, binascii.Error):
        raise NotAllowed(INVALID) from None
    if claims.expires_at <= (time.time() if now is None else now):
        raise NotAllowed(EXPIRED)
    return claims


def verify_link(token: str, secret: str, *, now: float | None = None) -> LinkClaims:
    """A bot's link: its claims, or NotAllowed (forged, altered, or expired)."""
    return verify(token, secret, LinkClaims, now=now)


def link_secret(settings: Settings) -> str | None:
    secret = settings.web.secret
    return secret.get_secret_value().strip() if secret is not None else None


def page_link(
    settings: Settings,
    requester: Requester,
    page: str,
    reply_to: dict[str, str] | None = None,
    *,
    now: float | None = None,
) -> str | None:
    """A signed link opening `page` as `requester`, or None where no web front end is set up (no public_url or
    no secret). Results asked for through it go to `reply_to` (default: the requester's chat)."""
    secret, base = link_secret(settings), settings.web.public_url
    if not secret or not base:
        return None
    issued = time.time() if now is None else now
    claims = LinkClaims(
        requester=requester.model_copy(update={"privilege": Privilege.USER}),
        reply_to=reply_to if reply_to is not None else chat_reply_to(requester),
        page=page,
        expires_at=int(issued + settings.web.link_ttl_s),
    )
    return f"{base.rstrip('/')}{PATH}{sign(claims, secret)}"


def chat_reply_to(requester: Requester) -> dict[str, str]:
    """Where results go when a link names no message to answer: the requester's chat itself, under the keys each
    bot reads (Telegram's chat_id, Discord's channel_id)."""
    return {"chat_id": requester.chat_id, "channel_id": requester.chat_id}


def gallery_link(
    settings: Settings, requester: Requester, reply_to: dict[str, str] | None = None
) -> str | None:
    """ "Your gallery": the /history reply's link (None when the web front end isn't configured)."""
    return page_link(settings, requester, PAGE_GALLERY, reply_to)


PRIVATE_ONLY = "Your gallery: send me /history in a private chat for your own link to it."


def with_gallery_link(
    text: str,
    settings: Settings,
    requester: Requester,
    reply_to: dict[str, str] | None = None,
    *,
    private: bool,
) -> str:
    """The /history reply: `text`, then "Your gallery: <signed link>" where the web front end is set up.

    A link is a credential for its lifetime, so it goes only where the requester alone sees it (`private`: a DM,
    an ephemeral reply); elsewhere the reply says where to ask for it."""
    link = gallery_link(settings, requester, reply_to)
    if link is None:
        return text
    return f"{text}\n\nYour gallery: {link}" if private else f"{text}\n\n{PRIVATE_ONLY}"


def with_region_link(
    text: str,
    settings: Settings,
    requester: Requester,
    request_id: str,
    index: int,
    *,
    private: bool,
) -> str:
    """The region picker's words, then a signed link to paint the region in the web editor instead (only
    where the requester alone sees it, like `with_gallery_link`)."""
    link = region_link(settings, requester, request_id, index)
    if link is None or not private:
        return text
    return f"{text}\n\nOr paint the region yourself on the web: {link}"


def region_link(
    settings: Settings,
    requester: Requester,
    request_id: str,
    index: int,
    reply_to: dict[str, str] | None = None,
) -> str | None:
    """Vary (Region): the region editor for image `index` of `request_id` (None when not configured)."""
    return page_link(settings, requester, f"{REGION_PREFIX}{request_id}:{index}", reply_to)


def region_target(page: str) -> tuple[str, int] | None:
    """(request_id, index) of a region page, None for any other page."""
    if not page.startswith(REGION_PREFIX):
        return None
    request_id, _, index = page.removeprefix(REGION_PREFIX).rpartition(":")
    if not request_id or not index.isdigit() or int(index) > 3:
        return None
    return request_id, int(index)
