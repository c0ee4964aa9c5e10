"""/link/<token>: a chat bot's signed link opens a session as that platform user, then the page it names.

The token is checked (signature under the web secret, expiry) by core, and a region link's image is checked to
be one this user may edit before anything is set; then the session cookie replaces any earlier one, and the
browser is sent on to the page with the token out of its address bar (and, by Referrer-Policy, out of any
Referer).
"""

from __future__ import annotations

import logging

from aiohttp import web

from bots.web.context import CONTEXT
from bots.web.session import new_session, set_session
from core.commands.links import PAGE_CHAT, region_target, verify_link
from core.errors import NotAllowed

log = logging.getLogger(__name__)

NO_LINKS = "This web page takes no links from the bots (no IMAGEBOT_WEB__SECRET is set here)."


async def open_link(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    if not context.community:
        raise NotAllowed(NO_LINKS)
    claims = verify_link(request.match_info["token"], context.secret)
    target = region_target(claims.page)
    if target is not None:
        await context.service.image(*target, claims.requester)  # someone else's image is refused here
        location = f"/region/{target[0]}/{target[1]}"
    else:
        location = "/" if claims.page == PAGE_CHAT else "/gallery"
    session = new_session(claims.requester, claims.reply_to, context.settings.web.session_ttl_s)
    response = web.Response(status=303, headers={"Location": location})
    set_session(response, session, context.secret, secure=context.secure_cookies)
    log.info("a link opened a web session for %s:%s", claims.requester.platform, claims.requester.user_id)
    return response
