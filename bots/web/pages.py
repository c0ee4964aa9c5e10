"""The pages: plain HTML from static/ with the session's CSRF token and a few values filled in (escaped).

No inline script or style anywhere (the content security policy forbids them): each page loads its own script
from /static/, which reads what it needs from data- attributes and the csrf-token <meta>.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template

from aiohttp import web

from bots.web.context import CONTEXT
from bots.web.requester import current
from bots.web.session import Session, csrf_token
from core.errors import InvalidRequest

STATIC = resources.files("bots.web") / "static"


@cache
def _template(name: str) -> Template:
    return Template((STATIC / name).read_text(encoding="utf-8"))


def _who(session: Session) -> str:
    requester = session.requester
    name = requester.display_name or requester.user_id
    return name if requester.platform == "web" else f"{name} ({requester.platform.value})"


def render(request: web.Request, name: str, **values: str | int) -> web.Response:
    session = current(request)
    secret = request.app[CONTEXT].secret
    fields = {"csrf": csrf_token(session, secret), "who": _who(session), **values}
    text = _template(name).substitute({key: html.escape(str(value)) for key, value in fields.items()})
    return web.Response(text=text, content_type="text/html")


async def chat(request: web.Request) -> web.Response:
    return render(request, "chat.html")


async def gallery(request: web.Request) -> web.Response:
    return render(request, "gallery.html")


def _index(text: str) -> int:
    if not text.isdigit() or int(text) > 3:
        raise InvalidRequest("index", "Pick image 1 to 4.")
    return int(text)


async def region(request: web.Request) -> web.Response:
    """The region editor for one image — only for whoever may use that result's buttons (core checks)."""
    session, service = current(request), request.app[CONTEXT].service
    request_id, index = request.match_info["request_id"], _index(request.match_info["index"])
    image = await service.image(request_id, index, session.requester)
    parent = await service.queue.load(request_id)
    return render(
        request,
        "region.html",
        request_id=request_id,
        index=index,
        index_label=index + 1,
        src=f"/{image.key}",
        width=image.width,
        height=image.height,
        prompt=parent.prompt,
    )
