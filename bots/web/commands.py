"""The page's requests that change something, each one core call: /imagine text, a result button, a region
edit, deleting one's own result. Who asks is the session's requester; results go to the session's reply_to."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from bots.web.context import CONTEXT
from bots.web.markup import pressed_view, submission_view
from bots.web.requester import current
from core.commands.buttons import decode_button
from core.commands.dialogs import ANSWER_MAX_CHARS, Answer
from core.errors import InvalidRequest

PNG_DATA_URL = "data:image/png;base64,"


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest("body", "Send the form from the page itself (JSON).") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body", "Send the form from the page itself (JSON).")
    return body


def _text(body: dict[str, Any], name: str, limit: int = 4000) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidRequest(name, f"'{name}' must be text of at most {limit} characters.")
    return value


def _source_id(session_sid: str, body: dict[str, Any]) -> str | None:
    """The page sends a fresh nonce per submit, so a double-submitted form is queued once."""
    nonce = body.get("nonce")
    return f"{session_sid}:{nonce}" if isinstance(nonce, str) and 0 < len(nonce) <= 64 else None


async def imagine(request: web.Request) -> web.Response:
    session, service = current(request), request.app[CONTEXT].service
    body = await _body(request)
    text = _text(body, "text")
    if not text.strip():
        raise InvalidRequest("prompt", "Type what to draw, e.g. a lighthouse at dusk --ar 16:9")
    submission = await service.imagine(
        text, session.requester, source_id=_source_id(session.sid, body), reply_to=session.reply_to
    )
    return web.json_response(submission_view(submission))


async def press(request: web.Request) -> web.Response:
    session, service = current(request), request.app[CONTEXT].service
    body = await _body(request)
    button = decode_button(_text(body, "button", 100))
    pressed = await service.press(button, session.requester, reply_to=session.reply_to, answer=_answer(body))
    return web.json_response(pressed_view(pressed))


def _answer(body: dict[str, Any]) -> Answer | None:
    """What the page answered a question with (Remix's or a region's prompt, Custom Zoom's factor)."""
    answer = body.get("answer")
    if answer is None:
        return None
    if not isinstance(answer, dict):
        raise InvalidRequest("answer", "Answer the question on the page itself.")
    prompt, factor = answer.get("prompt"), answer.get("factor")
    for name, value in (("prompt", prompt), ("factor", factor)):
        if value is not None and (not isinstance(value, str) or len(value) > ANSWER_MAX_CHARS):
            raise InvalidRequest(name, f"The {name} must be text of at most {ANSWER_MAX_CHARS} characters.")
    return Answer(prompt=prompt, factor=factor)


def _mask(body: dict[str, Any], limit: int) -> bytes:
    data_url = _text(body, "mask", limit)
    if not data_url.startswith(PNG_DATA_URL):
        raise InvalidRequest("mask", "The mask must be a PNG painted in the region editor.")
    try:
        return base64.b64decode(data_url.removeprefix(PNG_DATA_URL), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("mask", "The mask could not be read; paint it again.") from None


async def region(request: web.Request) -> web.Response:
    session, context = current(request), request.app[CONTEXT]
    body = await _body(request)
    index = body.get("index")
    if not isinstance(index, int) or not 0 <= index <= 3:
        raise InvalidRequest("index", "Pick image 1 to 4.")
    submission = await context.service.edit_region(
        requester=session.requester,
        request_id=_text(body, "request_id", 32),
        index=index,
        mask_png=_mask(body, context.settings.web.max_body_bytes),
        prompt=_text(body, "prompt"),
        reply_to=session.reply_to,
        source_id=_source_id(session.sid, body),
    )
    return web.json_response(submission_view(submission))


async def delete(request: web.Request) -> web.Response:
    session, service = current(request), request.app[CONTEXT].service
    request_id = _text(await _body(request), "request_id", 32)
    deleted = await service.delete(request_id, session.requester)
    return web.json_response({"request_id": request_id, "deleted": deleted.outcome.deleted})
