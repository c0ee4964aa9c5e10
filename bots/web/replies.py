"""The one place an error becomes what the page shows: JSON for the page's scripts, a short page otherwise."""

from __future__ import annotations

import html

from aiohttp import web

from core.commands.messages import error_message
from core.errors import InvalidRequest, NotAllowed, NotFound, PromptRejected, QuotaExceeded, UserError

STATUS: tuple[tuple[type[UserError], int], ...] = (
    (NotAllowed, 403),
    (NotFound, 404),
    (QuotaExceeded, 429),
    (InvalidRequest, 400),
    (PromptRejected, 400),
)


def status_for(exc: BaseException) -> int:
    fallback = 400 if isinstance(exc, UserError) else 500
    return next((status for kind, status in STATUS if isinstance(exc, kind)), fallback)


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def error_response(request: web.Request, exc: BaseException) -> web.Response:
    """`exc` as the user reads it (an unexpected error's text never leaks: error_message logs it)."""
    response = message_response(request, status_for(exc), error_message(exc))
    if isinstance(exc, QuotaExceeded):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return response


def message_response(request: web.Request, status: int, text: str) -> web.Response:
    if wants_json(request):
        response = web.json_response({"error": text}, status=status)
    else:
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>imagebot</title>'
            '<link rel="stylesheet" href="/static/style.css">'
            '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml"></head><body><main class="notice">'
            f"<h1>imagebot</h1><p>{html.escape(text)}</p></main></body></html>"
        )
        response = web.Response(text=body, status=status, content_type="text/html")
    return response
