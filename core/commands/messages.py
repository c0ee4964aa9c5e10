"""The words users read, shared by every front end so Discord and Telegram say the same thing."""

from __future__ import annotations

import logging

from core.errors import ImagebotError, UserError
from core.jobs.queue import Submission
from core.models.request import GenerationRequest, Mode
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


def human_duration(seconds: float) -> str:
    """An estimate as people say it: "a few seconds", "about 40 s", "about 3 min", "about 1 h 20 min"."""
    if seconds < 10:
        return "a few seconds"
    if seconds < 55:
        return f"about {round(seconds / 10) * 10} s"
    if seconds < 3570:
        return f"about {max(1, round(seconds / 60))} min"
    hours, minutes = divmod(round(seconds / 600) * 10, 60)
    return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"


def queued_message(submission: Submission) -> str:
    if submission.cached:
        return "Found these in the cache — here they come."
    if submission.duplicate:
        return "I'm already working on that one."
    parts = ["Queued"]
    if submission.position:
        parts.append(f"position {submission.position}")
    if submission.eta_s is not None:
        parts.append(human_duration(submission.eta_s))
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


def origin_label(request: GenerationRequest | None) -> str | None:
    """What a result was made from, when not from a prompt alone: "Variation of image 1", "Reroll"…"""
    if request is None:
        return None
    number = "" if request.parent_index is None else f" of image {request.parent_index + 1}"
    if request.mode is Mode.VARIATION:
        return f"Variation{number}"
    if request.mode is Mode.UPSCALE:
        return f"Upscale{number}"
    if request.mode is Mode.INPAINT:
        return f"Vary (Region){number}"
    if request.mode is Mode.OUTPAINT and request.canvas is not None:
        canvas = request.canvas
        if canvas.pan is not None:
            return f"Pan {canvas.pan}{number}"
        return f"Zoom Out {canvas.zoom:g}×{number}"
    if request.mode in (Mode.UPSCALE_SUBTLE, Mode.UPSCALE_CREATIVE):
        kind = "Subtle" if request.mode is Mode.UPSCALE_SUBTLE else "Creative"
        return f"Upscale ({kind}) {request.upscale_factor}×{number}"
    if request.mode is Mode.REROLL:
        return "Reroll"
    if request.mode is Mode.IMG2IMG:
        return "From your image"
    return None


def result_caption(request: GenerationRequest | None, event: ResultEvent, limit: int = CAPTION_LIMIT) -> str:
    """Prompt (shortened to fit); what it was made from, seed(s) and model; the request's notes and the
    worker's — at most `limit` UTF-16 units."""
    seeds = ", ".join(str(image.seed) for image in event.images if image.seed is not None)
    origin = origin_label(request)
    tail = f"\n{origin} · " if origin else "\n"
    tail += f"seed {seeds} · {event.model}"
    if event.cached:
        tail += " · cached"
    if event.fallback:
        tail += " · made by OpenAI (local generator unavailable)"
    for note in request.notes if request else ():
        tail += f"\nNote: {note}"
    if event.message:
        tail += f"\n{event.message}"
    tail = shorten(tail, limit // 2)
    prompt = request.prompt if request else ""
    if event.revised_prompt:
        prompt = event.revised_prompt
    return shorten(prompt, limit - text_length(tail)) + tail
