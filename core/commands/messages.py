"""The words users read, shared by every front end so Discord and Telegram say the same thing."""

from __future__ import annotations

import logging

from core.errors import ImagebotError, UserError
from core.jobs.queue import Submission
from core.models.request import GenerationRequest
from core.models.result import ResultEvent

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024  # Telegram's caption limit; Discord's message limit is larger


def error_message(exc: BaseException, request_id: str | None = None) -> str:
    """What to tell the user about an exception. Unexpected ones never leak their text."""
    if isinstance(exc, UserError):
        return exc.message
    ref = f" (reference {request_id})" if request_id else ""
    if isinstance(exc, ImagebotError) and exc.reason_code == "backend_unavailable":
        return exc.message
    log.error("unexpected error%s", ref, exc_info=exc)
    return f"Sorry — something went wrong on our side{ref}. Please try again in a moment."


def queued_message(submission: Submission) -> str:
    if submission.cached:
        return "Found these in the cache — here they come."
    if submission.duplicate:
        return "I'm already working on that one."
    parts = ["Queued"]
    if submission.position:
        parts.append(f"position {submission.position}")
    if submission.eta_s is not None:
        parts.append(f"about {max(1, round(submission.eta_s))} s")
    text = " — ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]
    for note in submission.notes:
        text += f"\nNote: {note}"
    return text


def progress_message(event: ResultEvent) -> str:
    if event.step and event.total_steps:
        return f"Rendering… {round(100 * event.step / event.total_steps)}%"
    return event.message or "Rendering…"  # a retry says so


def text_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units): an emoji outside the BMP counts twice."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, with an ellipsis when anything was cut."""
    if text_length(text) <= limit:
        return text
    kept = []
    used = 0
    for char in text:
        size = text_length(char)
        if used + size > limit - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept).rstrip() + "…"


def result_caption(request: GenerationRequest | None, event: ResultEvent, limit: int = CAPTION_LIMIT) -> str:
    """Prompt (shortened to fit), seed(s) and model, plus any note — at most `limit` UTF-16 units."""
    seeds = ", ".join(str(image.seed) for image in event.images if image.seed is not None)
    tail = f"\nseed {seeds} · {event.model}"
    if event.cached:
        tail += " · cached"
    if event.fallback:
        tail += " · made by OpenAI (local generator unavailable)"
    if event.message:
        tail += f"\n{event.message}"
    tail = shorten(tail, limit // 2)
    prompt = request.prompt if request else ""
    if event.revised_prompt:
        prompt = event.revised_prompt
    return shorten(prompt, limit - text_length(tail)) + tail
