"""Every queued button action, and the service call it stands for: the front ends hold no per-action
branching."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core import constants as c
from core.commands.buttons import PAN_DIRECTIONS, Button
from core.commands.dialogs import Answer
from core.jobs.queue import Submission
from core.models.request import Requester
from core.service.library import LibraryService as ImagineService

_PressAction = Callable[
    [ImagineService, Button, int, Requester, str, dict[str, str], Answer], Awaitable[Submission]
]


async def _vary_strong(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.vary(
        button.request_id,
        index,
        who,
        strong=True,
        source_id=source_id,
        reply_to=reply_to,
        prompt=answer.prompt,
    )


async def _vary_subtle(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.vary(
        button.request_id,
        index,
        who,
        strong=False,
        source_id=source_id,
        reply_to=reply_to,
        prompt=answer.prompt,
    )


async def _upscale(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.upscale(button.request_id, index, who, source_id=source_id, reply_to=reply_to)


async def _upscale_subtle(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.upscale_image(
        button.request_id, index, who, creative=False, source_id=source_id, reply_to=reply_to
    )


async def _upscale_creative(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.upscale_image(
        button.request_id, index, who, creative=True, source_id=source_id, reply_to=reply_to
    )


async def _region(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.vary_region(
        button.request_id,
        index,
        button.cells,
        who,
        prompt=answer.prompt,
        source_id=source_id,
        reply_to=reply_to,
    )


async def _zoom(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    factor = int(button.arg or "200") / 100
    return await service.zoom_out(
        button.request_id, index, factor, who, prompt=answer.prompt, source_id=source_id, reply_to=reply_to
    )


async def _pan(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    direction = PAN_DIRECTIONS[button.arg or "l"]
    return await service.pan(
        button.request_id, index, direction, who, prompt=answer.prompt, source_id=source_id, reply_to=reply_to
    )


async def _reroll(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.reroll(
        button.request_id, who, source_id=source_id, reply_to=reply_to, prompt=answer.prompt
    )


async def _describe(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.describe(
        who, result_id=button.request_id, index=index, source_id=source_id, reply_to=reply_to
    )


async def _suggestion(
    service: ImagineService,
    button: Button,
    index: int,
    who: Requester,
    source_id: str,
    reply_to: dict[str, str],
    answer: Answer,
) -> Submission:
    return await service.imagine_suggestion(
        button.request_id, index, who, source_id=source_id, reply_to=reply_to
    )


# Every queued button action → the service call it stands for; the front ends hold no per-action branching.
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
