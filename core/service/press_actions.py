"""Every queued button action, and the service call it stands for: the front ends hold no per-action
branching."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict

from core import constants as c
from core.commands.buttons import PAN_DIRECTIONS, Button
from core.commands.dialogs import Answer
from core.jobs.queue import Submission
from core.models.request import Requester
from core.service.library import LibraryService


class Where(TypedDict):
    source_id: str
    reply_to: dict[str, str]


@dataclass(frozen=True)
class Press:
    """One press on its way to a service call: the button, its image, who pressed, the press's own id (so a
    redelivered press is queued once), where to reply, and what the presser answered (Remix, Custom Zoom)."""

    button: Button
    index: int
    who: Requester
    source_id: str
    reply_to: dict[str, str] = field(default_factory=dict)
    answer: Answer = field(default_factory=Answer)

    @property
    def where(self) -> Where:
        """The keyword arguments every service call takes."""
        return Where(source_id=self.source_id, reply_to=self.reply_to)


_PressAction = Callable[[LibraryService, Press], Awaitable[Submission]]


async def _vary_strong(service: LibraryService, p: Press) -> Submission:
    return await service.vary(
        p.button.request_id, p.index, p.who, strong=True, prompt=p.answer.prompt, **p.where
    )


async def _vary_subtle(service: LibraryService, p: Press) -> Submission:
    return await service.vary(
        p.button.request_id, p.index, p.who, strong=False, prompt=p.answer.prompt, **p.where
    )


async def _upscale(service: LibraryService, p: Press) -> Submission:
    return await service.upscale(p.button.request_id, p.index, p.who, **p.where)


async def _upscale_subtle(service: LibraryService, p: Press) -> Submission:
    return await service.upscale_image(p.button.request_id, p.index, p.who, creative=False, **p.where)


async def _upscale_creative(service: LibraryService, p: Press) -> Submission:
    return await service.upscale_image(p.button.request_id, p.index, p.who, creative=True, **p.where)


async def _region(service: LibraryService, p: Press) -> Submission:
    return await service.vary_region(
        p.button.request_id, p.index, p.button.cells, p.who, prompt=p.answer.prompt, **p.where
    )


async def _zoom(service: LibraryService, p: Press) -> Submission:
    factor = int(p.button.arg or "200") / 100
    return await service.zoom_out(
        p.button.request_id, p.index, factor, p.who, prompt=p.answer.prompt, **p.where
    )


async def _pan(service: LibraryService, p: Press) -> Submission:
    direction = PAN_DIRECTIONS[p.button.arg or "l"]
    return await service.pan(
        p.button.request_id, p.index, direction, p.who, prompt=p.answer.prompt, **p.where
    )


async def _reroll(service: LibraryService, p: Press) -> Submission:
    return await service.reroll(p.button.request_id, p.who, prompt=p.answer.prompt, **p.where)


async def _describe(service: LibraryService, p: Press) -> Submission:
    return await service.describe(p.who, result_id=p.button.request_id, index=p.index, **p.where)


async def _suggestion(service: LibraryService, p: Press) -> Submission:
    return await service.imagine_suggestion(p.button.request_id, p.index, p.who, **p.where)


# Every queued button action → the service call it stands for.
PRESS_ACTIONS: dict[str, _PressAction] = {
    c.ACTION_VARY: _vary_strong,  # V<i> is a strong variation
    c.ACTION_VARY_STRONG: _vary_strong,
    c.ACTION_VARY_SUBTLE: _vary_subtle,
    c.ACTION_UPSCALE_2X: _upscale,  # the old single-image button, on old messages
    c.ACTION_UPSCALE_SUBTLE: _upscale_subtle,
    c.ACTION_UPSCALE_CREATIVE: _upscale_creative,
    c.ACTION_REGION_SUBMIT: _region,
    c.ACTION_REGION_PROMPT: _region,
    c.ACTION_ZOOM: _zoom,
    c.ACTION_PAN: _pan,
    c.ACTION_REROLL: _reroll,
    c.ACTION_DESCRIBE: _describe,
    c.ACTION_SUGGESTION: _suggestion,
}
# Presses that open the prompt for editing first when the presser has Remix on (/settings).
REMIXABLE = frozenset(
    {
        c.ACTION_VARY,
        c.ACTION_VARY_STRONG,
        c.ACTION_VARY_SUBTLE,
        c.ACTION_REROLL,
        c.ACTION_ZOOM,
        c.ACTION_ZOOM_CUSTOM,
        c.ACTION_PAN,
        c.ACTION_REGION_SUBMIT,
    }
)
