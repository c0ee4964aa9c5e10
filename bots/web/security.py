"""Middlewares every request passes: errors as the user reads them, strict headers, the session, CSRF.

- Content-Security-Policy: scripts, styles, images and connections from this origin only; no inline script or
  style, no frames, no plugins, forms post only here. The pages load no third-party script or font.
- Every state-changing request (anything but GET/HEAD/OPTIONS) must carry the session's CSRF token in the
  X-CSRF-Token header, and an Origin, when the browser sends one, of this very host.
- Bodies are limited by the application's client_max_size (settings.web.max_body_bytes).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from bots.web.context import CONTEXT
from bots.web.replies import error_response, message_response
from bots.web.requester import session_for
from bots.web.session import COOKIE, SESSION, csrf_ok, read_session, set_session

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a link's token never leaves in a Referer
    "Cross-Origin-Opener-Policy": "same-origin",
}
CSRF_REFUSED = "This page is out of date or came from elsewhere; reload it and try again."


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 413:
            limit = request.app[CONTEXT].settings.web.max_body_bytes
            return message_response(request, 413, f"That is too large; send at most {limit // 1024} KiB.")
        raise
    except Exception as exc:  # an unexpected one is logged, and its text never shown
        return error_response(request, exc)


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response as it is sent (pages, errors, files, the event stream): the headers above."""
    response.headers.update(HEADERS)
    if not request.path.startswith(("/static/", "/images/")):
        response.headers.setdefault("Cache-Control", "no-store")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the visitor's session (a new local one on the embedded default); refuse a state change without
    the session's CSRF token; send a new session's cookie with the response."""
    context = request.app[CONTEXT]
    session = session_for(request)
    request[SESSION] = session
    if request.method not in SAFE_METHODS and not (
        csrf_ok(request, session, context.secret) and _same_origin(request)
    ):
        log.info("refused a %s to %s without a valid CSRF token", request.method, request.path)
        return message_response(request, 403, CSRF_REFUSED)
    response = await handler(request)
    fresh = session is not None and read_session(request, context.secret) is None
    if fresh and COOKIE not in response.cookies and session is not None:
        set_session(response, session, context.secret, secure=context.secure_cookies)
    return response


MIDDLEWARES = (errors, sessions)  # the first is outermost
