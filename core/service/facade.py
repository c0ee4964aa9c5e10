"""The one entry point every front end calls: turn a command or a button press into a queued request.

Front ends parse platform input, call these methods, and render what comes back (a Submission now, a
ResultEvent later on the platform's stream). No platform types, no ML, no retries here. The methods live in
layers (base → commands → edits → library → this module's presses); `ImagineService` is all of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core import constants as c
from core.commands.buttons import Button
from core.commands.derivation import (
    scoped_request_id,
)
from core.commands.dialogs import Answer, Ask, Picker
from core.commands.edits import (
    parse_zoom,
)
from core.commands.recipe import ResultInfo
from core.commands.regions import check_cells
from core.errors import InvalidRequest
from core.governance.library import Deleted, History
from core.governance.quotas import owner_id
from core.jobs.queue import Submission, cloud_job_id
from core.models.request import Requester
from core.models.result import ResultEvent, StoredImage
from core.service.base import counts_refusals
from core.service.library import LibraryService
from core.service.press_actions import PRESS_ACTIONS, REMIXABLE, Press


@dataclass(frozen=True)
class Pressed:
    """What a button press did: queued a job (`submission`), picked a finished image to show (`image`),
    opened the region picker (`picker`), or asks something first (`ask`: press `ask.button` with the answer)."""

    button: Button
    submission: Submission | None = None
    image: StoredImage | None = None
    info: ResultInfo | None = None  # ⓘ
    history: History | None = None  # ◀ / ▶ on /history
    deleted: Deleted | None = None  # 🗑
    shown: ResultEvent | None = None  # "Show" on /history: the result, to post again with its buttons
    picker: Picker | None = None
    ask: Ask | None = None


class ImagineService(LibraryService):
    @counts_refusals
    async def press(
        self,
        button: Button,
        requester: Requester,
        *,
        reply_to: dict[str, str] | None = None,
        now: float | None = None,
        answer: Answer | None = None,
    ) -> Pressed:
        """Any result button, on any front end: U shows an image, Vary (Region) and its cells show the region
        picker, a press that needs a prompt (Remix, a region's own prompt) or a factor (Custom Zoom) asks for
        it (press `ask.button` again with the `answer`), every other press queues a job.

        A double tap of one button by one user queues one job, and so does a press while the job it queued is
        still waiting or running; after that job ended a press is new work (core.commands.presses).
        """
        index = button.index if button.index is not None else 0
        if button.action == c.ACTION_UPSCALE:
            return Pressed(button, image=await self.image(button.request_id, index, requester))
        shown = await self._press_shown(button, requester)
        if shown is not None:
            return shown
        step = await self.prepare(button, requester, answer)
        if isinstance(step, Picker):
            return Pressed(button, picker=step)
        if step is not None:
            return Pressed(button, ask=step)
        action = PRESS_ACTIONS.get(button.action)
        if action is None and button.action != c.ACTION_ZOOM_CUSTOM:
            raise InvalidRequest("button", "That button isn't one I know; please run /imagine again.")
        if action is None:  # Custom Zoom, its factor answered: a zoom button like the others
            factor = parse_zoom((answer or Answer()).factor or "")
            zoom = Button(c.ACTION_ZOOM, button.request_id, index, str(round(factor * 100)))
            remixed = None if answer is None or answer.prompt is None else Answer(prompt=answer.prompt)
            return await self.press(zoom, requester, reply_to=reply_to, now=now, answer=remixed)
        now = time.time() if now is None else now
        owner, button_id = owner_id(requester), button.encode()
        if answer is not None:
            button_id += f":{answer.key()}"
        source_id = f"{button_id}:{requester.user_id}:{now:.6f}"
        request_id = scoped_request_id(requester, source_id)
        claimed = await self.presses.claim(owner, button_id, request_id, now)
        if claimed != request_id:
            return Pressed(button, submission=await self._repeat(claimed))
        try:
            press = Press(button, index, requester, source_id, reply_to or {}, answer or Answer())
            submission = await action(self, press)
        except BaseException:
            await self.presses.release(owner, button_id, request_id, now)
            raise
        return Pressed(button, submission=submission)

    async def _press_shown(self, button: Button, requester: Requester) -> Pressed | None:
        """The buttons that show something and queue nothing: ⓘ, 🗑, Show, and /history's paging."""
        rid = button.request_id
        if button.action == c.ACTION_INFO:
            return Pressed(button, info=await self.info(rid, requester))
        if button.action == c.ACTION_DELETE:
            return Pressed(button, deleted=await self.delete(rid, requester))
        if button.action == c.ACTION_SHOW:
            return Pressed(button, shown=await self.show(rid, requester))
        if button.action in (c.ACTION_HISTORY_OLDER, c.ACTION_HISTORY_NEWER):
            older = button.action == c.ACTION_HISTORY_OLDER
            return Pressed(button, history=await self.history(requester, rid, older=older))
        return None

    async def prepare(
        self, button: Button, requester: Requester, answer: Answer | None = None
    ) -> Picker | Ask | None:
        """What a press shows before anything is queued: the region picker (Vary (Region) and its cells), or
        a question (a prompt under Remix or for a region, a Custom Zoom factor); None when the press can go
        ahead. Nothing is queued or charged; front ends that must answer at once (a Discord modal) call it
        before `press`, which calls it again."""
        action = button.action
        index = button.index if button.index is not None else 0
        if action in (c.ACTION_VARY_REGION, c.ACTION_REGION_CELL):
            return await self.picker(button.request_id, index, button.cells, requester)
        wants_factor = action == c.ACTION_ZOOM_CUSTOM and (answer is None or answer.factor is None)
        asks_prompt = action == c.ACTION_REGION_PROMPT or (
            action in REMIXABLE and (await self.preferences.get(requester.platform, requester.user_id)).remix
        )
        wants_prompt = asks_prompt and (answer is None or answer.prompt is None)
        if not (wants_factor or wants_prompt):
            return None
        if action in (c.ACTION_REGION_SUBMIT, c.ACTION_REGION_PROMPT):
            check_cells(button.cells)
        parent = await self.check_owner(button.request_id, requester)
        return Ask(button, parent.prompt if wants_prompt else None, wants_prompt, wants_factor)

    async def _repeat(self, request_id: str) -> Submission:
        """A press that repeats an earlier one: that request, where it stands now."""
        for queue, job_id in (
            (c.QUEUE_GPU, request_id),
            (c.QUEUE_CLOUD, request_id),
            (c.QUEUE_CLOUD, cloud_job_id(request_id)),
        ):
            position = await self.queue.position(job_id, queue)
            if position is not None:
                return Submission(request_id, queue, position, None, duplicate=True)
        return Submission(request_id, None, None, None, duplicate=True)
