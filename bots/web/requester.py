"""Who is asking, and where their results go.

On the embedded default (no web secret) every visitor is the one local user, on the web platform: results come
back on the web's own event stream. In a community deployment a visitor is whoever the signed link they opened
names (a Telegram or Discord user, as a `Requester` of that platform), and results asked for here are delivered by
that platform's bot to the chat the link came from (the link's `reply_to`); this page watches them too.
"""

from __future__ import annotations

from aiohttp import web

from bots.web.context import CONTEXT
from bots.web.session import LOCAL_USER, SESSION, Session, new_session, read_session
from core.errors import NotAllowed

NEEDS_LINK = "Open this page with the link the bot gives you: /history in the chat replies with a link to your gallery."


def session_for(request: web.Request) -> Session | None:
    """The visitor's session: from the cookie, or (embedded default only) a new one as the local user."""
    context = request.app[CONTEXT]
    session = read_session(request, context.secret)
    if session is not None:
        return session
    if context.community:
        return None
    return new_session(LOCAL_USER, {}, context.settings.web.session_ttl_s)


def current(request: web.Request) -> Session:
    """The session the middleware found for this request; NotAllowed without one."""
    session = request.get(SESSION)
    if session is None:
        raise NotAllowed(NEEDS_LINK)
    return session
