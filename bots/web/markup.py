"""Core's results as JSON for the page's scripts: the caption, the images and core's buttons with their labels.

The page draws what it is given and holds no per-action logic: a button is core's id and label, posted back
as is to /api/press (core decides what it does).
"""

from __future__ import annotations

from typing import Any

from core.commands.buttons import Button, button_label, result_buttons, single_buttons
from core.commands.messages import progress_message, queued_message, result_caption
from core.jobs.queue import Submission
from core.models.request import GenerationRequest
from core.models.result import EventKind, ResultEvent, StoredImage
from core.service import Pressed
from core.storage.protocol import PUBLIC_PREFIX

ENDED = {
    EventKind.FAILED: "Sorry — something went wrong on our side (reference {request_id}). Please try again.",
    EventKind.REFUSED: "I can't show this result. Please change your prompt and try again.",
    EventKind.CANCELLED: "Cancelled.",
}


def image_src(image: StoredImage) -> str:
    """Where the page loads an image: this process serves every public image itself (images.py)."""
    return f"/{image.key}" if image.key.startswith(f"{PUBLIC_PREFIX}/") else image.url


def buttons_view(rows: list[list[Button]]) -> list[list[dict[str, str]]]:
    return [[{"id": button.encode(), "label": button_label(button)} for button in row] for row in rows]


def region_href(request_id: str, index: int) -> str:
    return f"/region/{request_id}/{index}"


def images_view(event: ResultEvent) -> list[dict[str, Any]]:
    return [
        {
            "src": image_src(image),
            "width": image.width,
            "height": image.height,
            "index": image.index if image.index is not None else i,
            "seed": image.seed,
            "spoiler": image.spoiler,
            "region": region_href(event.request_id, image.index if image.index is not None else i),
        }
        for i, image in enumerate(event.images)
    ]


def event_view(event: ResultEvent, request: GenerationRequest | None) -> dict[str, Any]:
    """One result event as the page shows it."""
    view: dict[str, Any] = {"request_id": event.request_id, "kind": event.kind.value}
    if not event.terminal:
        view["text"] = progress_message(event)
        view["step"], view["total"] = event.step, event.total_steps
        if event.live_preview is not None:  # a data: URL, image-checked by the worker
            view["preview"] = event.live_preview
        elif event.preview is not None:
            view["preview"] = image_src(event.preview)
        return view
    if event.kind is EventKind.DONE:
        view["text"] = result_caption(request, event, limit=4000)
        view["images"] = images_view(event)
        mode = request.mode if request is not None else None
        view["buttons"] = buttons_view(result_buttons(event.request_id, mode, event.shown_indices))
        return view
    view["text"] = event.message or ENDED.get(event.kind, "").format(request_id=event.request_id)
    return view


def submission_view(submission: Submission) -> dict[str, Any]:
    return {
        "request_id": submission.request_id,
        "kind": "queued",
        "text": queued_message(submission),
        "position": submission.position,
    }


def pressed_view(pressed: Pressed) -> dict[str, Any]:
    """Whatever a button did, as the page shows it: an image (U), a queued job, ⓘ's text, a deletion…"""
    button = pressed.button
    if pressed.image is not None:
        return single_view(button, pressed.image)
    if pressed.submission is not None:
        return submission_view(pressed.submission)
    if pressed.deleted is not None:
        text = "Deleted: the images are gone from storage and from your gallery."
        return {"request_id": button.request_id, "kind": "deleted", "text": text}
    if pressed.shown is not None:
        return event_view(pressed.shown, None)
    if pressed.info is not None:
        return {"request_id": f"{button.request_id}-info", "kind": "info", "text": pressed.info.text()}
    if pressed.picker is not None:  # Vary (Region): the web paints the region in its editor instead
        return {
            "request_id": button.request_id,
            "kind": "navigate",
            "href": region_href(button.request_id, button.index or 0),
        }
    if pressed.ask is not None:
        ask = pressed.ask
        return {
            "request_id": f"{button.request_id}-ask",
            "kind": "ask",
            "text": ask.title,
            "button": ask.button.encode(),
            "prompt": ask.prompt if ask.wants_prompt else None,
            "factor": ask.wants_factor,
        }
    if pressed.history is not None:
        return {"request_id": f"{button.request_id}-history", "kind": "info", "text": pressed.history.text()}
    return {"request_id": button.request_id, "kind": "info", "text": "Done."}


def single_view(button: Button, image: StoredImage) -> dict[str, Any]:
    """U<n>: that image at full size, with core's buttons for one image and the region editor."""
    index = button.index or 0
    return {
        "request_id": button.request_id,
        "kind": "image",
        "text": f"Image {index + 1}",
        "images": [
            {
                "src": image_src(image),
                "width": image.width,
                "height": image.height,
                "index": index,
                "seed": image.seed,
                "spoiler": image.spoiler,
                "region": region_href(button.request_id, index),
            }
        ],
        "buttons": buttons_view(single_buttons(button.request_id, index)),
    }
