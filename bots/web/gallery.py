"""/api/gallery: the visitor's own finished results, newest first, a page at a time, with their parameters and
buttons — core's history (the same one /history pages through in the chats)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bots.web.context import CONTEXT
from bots.web.markup import event_view
from bots.web.requester import current
from core.governance.library import HistoryEntry


def entry_view(entry: HistoryEntry) -> dict[str, Any]:
    request = entry.request
    view = event_view(entry.result, request)
    view["parameters"] = {
        "prompt": request.prompt,
        "negative": request.negative_prompt,
        "size": f"{request.width}×{request.height}",
        "steps": request.steps,
        "guidance": request.guidance,
        "model": request.model,
        "mode": request.mode.value,
        "seeds": list(request.seeds),
    }
    view["created_at"] = entry.result.created_at
    return view


async def gallery(request: web.Request) -> web.Response:
    """?older=<request id>: the page after that result (the "Older" button)."""
    session, service = current(request), request.app[CONTEXT].service
    anchor = request.query.get("older") or None
    history = await service.history(session.requester, anchor, older=True)
    entries = [entry_view(entry) for entry in history.entries]
    older = history.entries[-1].request_id if history.page.has_older and history.entries else None
    return web.json_response({"results": entries, "older": older, "total": history.page.total})


async def result(request: web.Request) -> web.Response:
    """/api/result/<id>: one of the visitor's results as it stands (a page that reconnects catches up with it);
    {"kind": "pending"} while it has no result yet."""
    session, service = current(request), request.app[CONTEXT].service
    request_id = request.match_info["request_id"]
    asked = await service.check_owner(request_id, session.requester)
    if not await service.results.exists(request_id):
        return web.json_response({"request_id": request_id, "kind": "pending"})
    return web.json_response(event_view(await service.result(request_id), asked))
