"""The browser session: a signed cookie naming who the visitor is, and the CSRF token bound to it.

The cookie is a core signed token (core.commands.links) for the "session" purpose, so a link can't pass for a
cookie or the other way round; it is HttpOnly (no script reads it), SameSite=Lax (other sites' forms and
fetches don't carry it) and Secure when the pages are served over https. The CSRF token is an HMAC of the
session's random id: pages put it in a <meta> tag and every state-changing request sends it back in a header.
"""

from __future__ import annotations

import hmac
import secrets
import time

from aiohttp import web
from pydantic import Field

from core.commands.links import Expiring, sign, signature, verify
from core.errors import NotAllowed
from core.models.request import Platform, Requester

COOKIE = "imagebot_session"
CSRF_HEADER = "X-CSRF-Token"
PURPOSE = "session"
LOCAL_USER = Requester(platform=Platform.WEB, user_id="local", chat_id="local", display_name="you")


class Session(Expiring):
    requester: Requester
    reply_to: dict[str, str] = Field(default_factory=dict)
    sid: str  # random, per session: the CSRF token is bound to it


SESSION: web.RequestKey[Session | None] = web.RequestKey("session", Session)


def new_session(requester: Requester, reply_to: dict[str, str], ttl_s: int) -> Session:
    return Session(
        requester=requester,
        reply_to=reply_to,
        sid=secrets.token_urlsafe(16),
        expires_at=int(time.time() + ttl_s),
    )


def read_session(request: web.Request, secret: str) -> Session | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return verify(token, secret, Session, purpose=PURPOSE)
    except NotAllowed:
        return None


def set_session(response: web.StreamResponse, session: Session, secret: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        sign(session, secret, purpose=PURPOSE),
        max_age=max(0, session.expires_at - int(time.time())),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure,
    )


def csrf_token(session: Session, secret: str) -> str:
    return signature(secret, session.sid, "csrf")


def csrf_ok(request: web.Request, session: Session | None, secret: str) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    return session is not None and bool(sent) and hmac.compare_digest(sent, csrf_token(session, secret))
