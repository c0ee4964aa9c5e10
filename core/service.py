"""The one entry point every front end calls: turn a command or a button press into a queued request.

Front ends parse platform input, call these methods, and render what comes back (a Submission now, a
ResultEvent later on the platform's stream). No platform types, no ML, no retries here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import ParamSpec, TypeVar

from arq.connections import ArqRedis

from core import constants as c
from core import metrics
from core.commands.adapters import check_allowed, lora_catalog
from core.commands.buttons import PAN_DIRECTIONS, Button
from core.commands.canvas import inpaint_size
from core.commands.derivation import (
    IMG2IMG_STRENGTH,
    UPSCALE_STRENGTH,
    VARY_STRONG,
    VARY_SUBTLE,
    Derivation,
    Source,
    child_request,
    fitting_size,
    pick_image,
    pick_source,
    random_seeds,
    request_from_options,
    reroll_request,
    scoped_request_id,
)
from core.commands.describe import suggestion
from core.commands.dialogs import Answer, Ask, Picker
from core.commands.edits import (
    INPAINT_STRENGTH,
    pan_edit,
    parse_zoom,
    region_edit,
    remix_prompt,
    upscale_edit,
    zoom_edit,
)
from core.commands.grammar import ImagineOptions, UserDefaults, parse_imagine
from core.commands.presses import PressWindow
from core.commands.recipe import ResultInfo
from core.commands.regions import cells_mask, check_cells, check_mask, region_mask
from core.commands.uploads import Upload, fit_aspect, has_size_flag, read_upload, store_upload
from core.delivery.events import EventPublisher
from core.delivery.result_store import ResultStore
from core.errors import BackendUnavailable, InvalidRequest, NotAllowed, NotFound, UserError
from core.governance.admission import Admission, community_of, same_community
from core.governance.cancellation import Canceller
from core.governance.community import CommunityPolicy
from core.governance.describing import Describer, ImageSource
from core.governance.forget import Forgetter
from core.governance.library import Deleted, History, Library
from core.governance.preferences import PreferenceStore
from core.governance.quotas import owner_id
from core.governance.styles import NamedStyle, StyleBook, apply_style
from core.jobs.cache import ResultCache
from core.jobs.queue import CancelOutcome, JobQueue, Submission, cloud_job_id
from core.jobs.routing import Router
from core.jobs.workers import WorkerRegistry
from core.models.catalog import BackendKind, get_model
from core.models.privileges import Privilege
from core.models.provenance import NoProvenanceReader, ProvenanceReader
from core.models.request import ControlRef, GenerationRequest, Mode, Requester
from core.models.result import EventKind, ResultEvent, StoredImage
from core.models.verdict import PromptModerator
from core.settings import Settings
from core.storage.protocol import ImageStore

log = logging.getLogger(__name__)

__all__ = ["UPSCALE_STRENGTH", "Answer", "Ask", "ImagineService", "Picker", "Pressed", "SourceFetcher"]

SourceFetcher = Callable[[], Awaitable[bytes]]
"""Downloads an upload's bytes; `imagine` calls it only after every check has passed."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _counts_refusals(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
    """Count what the method refuses (a user error, or no generator to run it) in imagebot_refusals_total."""

    @functools.wraps(method)
    async def counted(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except (UserError, BackendUnavailable) as exc:
            metrics.REFUSALS.labels(kind=exc.reason_code).inc()
            raise

    return counted


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


class ImagineService:
    def __init__(
        self,
        redis: ArqRedis,
        settings: Settings,
        store: ImageStore,
        moderator: PromptModerator,
        *,
        provenance: ProvenanceReader | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.moderator = moderator
        retention = settings.retention
        self.queue = JobQueue(redis, ttl_s=retention.requests_s)
        self.events = EventPublisher(redis)
        self.cache = ResultCache(redis, ttl_s=retention.results_s)
        self.results = ResultStore(redis, ttl_s=retention.results_s)
        self.workers = WorkerRegistry(redis)
        self.router = Router(self.workers, cloud_enabled=settings.openai.enabled)
        self.admission = Admission(redis, settings, moderator)
        self.canceller = Canceller(redis, self.admission.quotas, retention)
        self.forgetter = Forgetter(redis, settings, store, self.canceller)
        self.presses = PressWindow(redis, self.queue)
        self.styles = StyleBook(redis, settings)
        self.library = Library(redis, store, provenance or NoProvenanceReader(), retention)
        self.describer = Describer(redis, settings, store, self.admission)
        self.preferences = PreferenceStore(redis)

    # -- commands -------------------------------------------------------------------------------------------

    @_counts_refusals
    async def imagine(
        self,
        text: str,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
        defaults: UserDefaults | None = None,
        source_image: bytes | SourceFetcher | None = None,
    ) -> Submission:
        """/imagine: check, then queue. `source_image` (an upload, or a fetcher of one) makes it img2img, or, with
        --control, is the picture the ControlNet reads.

        Everything `precheck` checks comes first, so a fetcher is called only for a request that may go ahead;
        the upload is stored only once the request is sure to be queued. `source_id` identifies the platform
        message or interaction, so a redelivered command is queued once.
        """
        request_id = scoped_request_id(requester, source_id)
        with_image = source_image is not None
        options, policy = await self._admit_command(text, requester, defaults, with_image, request_id)
        source = Source()
        width, height = options.width, options.height
        upload, control, mask = None, None, None
        if source_image is not None:
            data = source_image if isinstance(source_image, bytes) else await source_image()
            upload = read_upload(data, self.settings.limits.max_upload_pixels)
            if options.control is not None:
                control = ControlRef(kind=options.control, image=upload.key, weight=options.control_weight)
            else:
                source = Source(Mode.IMG2IMG, upload.key, options.strength or IMG2IMG_STRENGTH)
            if not has_size_flag(text):
                width, height = fit_aspect(options.model, upload.width, upload.height)
            if options.region is not None:  # --region: repaint that rectangle, keep the rest, at its size
                drawn = await asyncio.to_thread(region_mask, options.region, upload.width, upload.height)
                mask = Upload(drawn, "image/png", upload.width, upload.height)
                strength = options.strength or INPAINT_STRENGTH
                source = Source(Mode.INPAINT, upload.key, strength, mask.key)
                width, height = inpaint_size(upload.width, upload.height)
        request = request_from_options(
            options, request_id, requester, reply_to or {}, source, width, height, control
        ).model_copy(update={"image_policy": policy.nsfw, "notes": options.notes, "style": options.style})
        submission = await self.submit(request, upload=upload, mask=mask)
        return Submission(**{**submission.__dict__, "notes": options.notes})

    @_counts_refusals
    async def precheck(
        self,
        text: str,
        requester: Requester,
        *,
        source_id: str | None = None,
        defaults: UserDefaults | None = None,
        with_image: bool = False,
    ) -> ImagineOptions:
        """What /imagine checks before anything costs: bans and pauses, the grammar, the prompt, the quota.

        Front ends call it before showing anything or downloading an upload (`with_image`); it raises what
        `imagine` would raise and reserves nothing (`imagine` checks again, and the reservation decides).
        """
        request_id = scoped_request_id(requester, source_id) if source_id is not None else None
        options, _ = await self._admit_command(text, requester, defaults, with_image, request_id)
        return options

    async def _admit_command(
        self,
        text: str,
        requester: Requester,
        defaults: UserDefaults | None,
        with_image: bool,
        request_id: str | None,
    ) -> tuple[ImagineOptions, CommunityPolicy]:
        policy = await self.admission.admit(requester)
        options = parse_imagine(
            text,
            default_model=policy.default_model or self.settings.default_model,
            limits=self.settings.limits,
            defaults=defaults,
            adapters=self.settings.adapters,
        )
        check_allowed(options.loras, policy.denied_loras)
        if options.control is not None and not with_image:
            raise InvalidRequest(
                "control",
                f"--control {options.control} reads a picture: attach one to the command (on Telegram, send the "
                "photo with the command as its caption).",
            )
        starts_from_image = with_image and options.control is None
        if starts_from_image and not get_model(options.model).supports_img2img:
            raise InvalidRequest("model", f"{options.model} can't start from an image; pick a local model.")
        if not starts_from_image and options.strength is not None:
            raise InvalidRequest("strength", "--strength only applies when you start from an image.")
        if options.style is not None:  # applied before the prompt check, which reads the final text
            preset = await self.styles.get(options.style, requester)
            prompt, negative = apply_style(
                preset, options.prompt, options.negative_prompt, self.settings.limits
            )
            options = dataclasses.replace(options, prompt=prompt, negative_prompt=negative)
        if not with_image and options.region is not None:
            raise InvalidRequest(
                "region",
                "--region repaints part of an image: attach the picture to the command (or reply to it), "
                "or use Vary (Region) under one of my images.",
            )
        if options.region is not None and (options.control is not None or has_size_flag(text)):
            raise InvalidRequest(
                "region",
                "--region repaints part of your picture at its own size: remove --control, --ar and --size.",
            )
        await self.admission.check_prompt(options.prompt, options.negative_prompt, requester)
        if request_id is None or not await self.queue.known(request_id):  # a redelivery is not charged again
            await self.admission.check_headroom(requester, options.n)
        return options, policy

    async def submit(
        self, request: GenerationRequest, *, upload: Upload | None = None, mask: Upload | None = None
    ) -> Submission:
        """Serve from the cache, or reserve the quota and queue the request once; a repeat is reported as such.

        `upload` (the request's checked source image) and `mask` (its inpaint mask) are stored only when the
        request is queued.
        """
        owner = owner_id(request.requester)
        cached = await self.cache.get(request)
        if cached is not None:
            await self.queue.store(request)
            await self.queue.remember(owner, request.request_id)
            await self.results.save(cached)
            await self.events.publish(cached)
            await self.admission.tally.job(cached)
            return Submission(request.request_id, None, None, 0.0, cached=True)
        route = await self.router.route(request)
        if await self.queue.known(request.request_id):  # a redelivered command: no new charge, no new place
            position = await self.queue.position(request.request_id, route.queue)
            return Submission(request.request_id, route.queue, position, None, duplicate=True)
        score = await self.admission.reserve(request, route.queue)
        try:
            for stored in (upload, mask):
                if stored is not None:
                    await store_upload(self.store, stored)
            queued = await self.queue.enqueue(request, route.queue, score)
        except BaseException:
            await self.admission.quotas.refund(request.request_id)
            raise
        # Not queued means a concurrent twin won the race; its reservation is this one (same id): keep it.
        await self.queue.remember(owner, request.request_id)
        slots = await self.workers.slots(route.queue)
        standing = await self.queue.standing(request.request_id, route.queue, slots, request)
        log.info(
            "request %s queued on %s (position %s, about %s s, fallback %s)",
            request.request_id,
            route.queue,
            standing.position,
            standing.eta_s,
            route.fallback,
        )
        return Submission(
            request.request_id, route.queue, standing.position, standing.eta_s, duplicate=not queued
        )

    async def vary(
        self,
        parent_id: str,
        index: int,
        requester: Requester,
        *,
        strong: bool = True,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
        prompt: str | None = None,
    ) -> Submission:
        """V1–V4, Vary (Strong / Subtle): new images close to image `index` of a finished grid (`prompt`: a
        remixed prompt, checked like a new one)."""

        def build(model: str, image: StoredImage, _: str | None) -> Derivation:
            width, height = fitting_size(model, image.width, image.height)
            strength = VARY_STRONG if strong else VARY_SUBTLE
            seeds = random_seeds(parent_n)
            return Derivation(Mode.VARIATION, index, image.key, strength, seeds, width, height, model)

        parent_n = (await self.queue.load(parent_id)).n
        return await self._edit(
            parent_id, index, requester, build, prompt=prompt, source_id=source_id, reply_to=reply_to
        )

    async def upscale(
        self,
        parent_id: str,
        index: int,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """Upscale 2× (old buttons): Lanczos to twice the size, then a light img2img pass to restore detail."""

        def build(model: str, image: StoredImage, _: str | None) -> Derivation:
            spec = get_model(model)
            width, height = image.width * 2, image.height * 2
            if max(width, height) > spec.max_side:
                raise InvalidRequest(
                    "upscale",
                    f"That image is already as large as {spec.name} can refine "
                    f"(up to {spec.max_side} px a side), so it can't be upscaled further.",
                )
            seed = image.seed if image.seed is not None else random_seeds(1)[0]
            return Derivation(Mode.UPSCALE, index, image.key, UPSCALE_STRENGTH, (seed,), width, height, model)

        return await self._edit(parent_id, index, requester, build, source_id=source_id, reply_to=reply_to)

    # -- edits of one image (issue 10) ----------------------------------------------------------------------

    async def upscale_image(
        self,
        parent_id: str,
        index: int,
        requester: Requester,
        *,
        creative: bool = False,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """Upscale (Subtle): super-resolution only; Upscale (Creative): then a detail pass. Refused beyond
        the upscaler settings' `max_output_side` / `max_output_pixels`."""

        def build(model: str, image: StoredImage, _: str | None) -> Derivation:
            return upscale_edit(model, image, index, creative, self.settings.upscaler)

        return await self._edit(parent_id, index, requester, build, source_id=source_id, reply_to=reply_to)

    async def vary_region(
        self,
        parent_id: str,
        index: int,
        cells: int,
        requester: Requester,
        *,
        prompt: str | None = None,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """Vary (Region) from chat: repaint the chosen cells of a 3×3 grid over image `index` (bit i is row
        i // 3, column i % 3), keep the rest; `prompt` is the region's (None: the image's own)."""
        check_cells(cells)
        return await self._edit(
            parent_id,
            index,
            requester,
            lambda model, image, key: region_edit(model, image, index, key or ""),
            prompt=prompt,
            source_id=source_id,
            reply_to=reply_to,
            mask=lambda image: cells_mask(cells, image.width, image.height),
        )

    async def edit_region(
        self,
        requester: Requester,
        request_id: str,
        index: int,
        mask_png: bytes,
        prompt: str | None = None,
        reply_to: dict[str, str] | None = None,
        *,
        source_id: str | None = None,
    ) -> Submission:
        """The web region editor: repaint where `mask_png` is white (or painted on a transparent layer) in
        image `index` of `request_id`. The mask must be the image's size and cover something but not
        everything; `prompt` is checked like a new one (None or blank: the image's own)."""
        return await self._edit(
            request_id,
            index,
            requester,
            lambda model, image, key: region_edit(model, image, index, key or ""),
            prompt=(prompt or "").strip() or None,
            source_id=source_id,
            reply_to=reply_to,
            mask=lambda image: check_mask(
                read_upload(mask_png, self.settings.limits.max_upload_pixels).data, image.width, image.height
            ),
        )

    async def zoom_out(
        self,
        parent_id: str,
        index: int,
        factor: float,
        requester: Requester,
        *,
        prompt: str | None = None,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """Zoom Out by `factor` (1.1–2.0): the image shrinks into the middle and the border is drawn."""
        factor = parse_zoom(str(factor))
        return await self._edit(
            parent_id,
            index,
            requester,
            lambda model, image, _: zoom_edit(model, image, index, factor),
            prompt=prompt,
            source_id=source_id,
            reply_to=reply_to,
        )

    async def pan(
        self,
        parent_id: str,
        index: int,
        direction: str,
        requester: Requester,
        *,
        prompt: str | None = None,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """Pan left/right/up/down: the canvas grows by half its side that way and the new strip is drawn."""
        if direction not in PAN_DIRECTIONS.values():
            raise InvalidRequest("pan", "Pan left, right, up or down.")
        return await self._edit(
            parent_id,
            index,
            requester,
            lambda model, image, _: pan_edit(model, image, index, direction),
            prompt=prompt,
            source_id=source_id,
            reply_to=reply_to,
        )

    async def picker(self, request_id: str, index: int, cells: int, requester: Requester) -> Picker:
        """Vary (Region)'s picker for image `index`, with `cells` selected (its presses come back here)."""
        parent = await self.check_owner(request_id, requester)
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE:
            raise InvalidRequest("button", "That request has no images to work from.")
        pick_source(parent, result, index)
        return Picker(request_id, index, cells)

    async def _edit(
        self,
        parent_id: str,
        index: int,
        requester: Requester,
        build: Callable[[str, StoredImage, str | None], Derivation],
        *,
        prompt: str | None = None,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
        mask: Callable[[StoredImage], bytes] | None = None,
    ) -> Submission:
        """The one path of every child of a finished image: who may, which image (not a withheld one), the
        prompt (or its remix) checked, the mask built and stored with the request, then `submit`."""
        parent, result, policy = await self._parent(parent_id, requester)
        remix = await self._remix(parent, prompt, requester)
        image = pick_source(parent, result, index)
        model = self._local_model(parent.model)
        upload = None
        if mask is not None:
            drawn = await asyncio.to_thread(mask, image)  # PIL decoding and encoding, off the event loop
            upload = Upload(drawn, "image/png", image.width, image.height)
        derivation = build(model, image, None if upload is None else upload.key)
        if remix is not None:
            derivation = replace(derivation, prompt=remix[0], negative_prompt=remix[1])
        request_id = scoped_request_id(requester, source_id)
        child = child_request(parent, requester, request_id, reply_to or {}, derivation, policy.nsfw)
        return await self.submit(child, mask=upload)

    async def _remix(
        self, parent: GenerationRequest, prompt: str | None, requester: Requester
    ) -> tuple[str, str] | None:
        """A remixed prompt and negative prompt, checked like a new command's; None: keep the parent's."""
        if prompt is None:
            return None
        text, negative = remix_prompt(prompt, self.settings.limits)
        negative = parent.negative_prompt if negative is None else negative
        await self.check_prompt(text, negative, requester)
        return text, negative

    async def reroll(
        self,
        parent_id: str,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
        prompt: str | None = None,
    ) -> Submission:
        """🔄: the same parameters with new seeds (`prompt`: a remixed prompt, checked like a new one)."""
        parent = await self.queue.load(parent_id)
        policy = await self._authorize(parent, requester)
        await self.check_prompt(parent.prompt, parent.negative_prompt, requester)
        remix = await self._remix(parent, prompt, requester)
        request_id = scoped_request_id(requester, source_id)
        return await self.submit(
            reroll_request(parent, requester, request_id, reply_to or {}, policy.nsfw, remix)
        )

    async def cancel(self, request_id: str, requester: Requester) -> CancelOutcome:
        """Cancel a queued request (one's own, or anyone's for a moderator)."""
        request = await self.queue.load(request_id)
        moderator_here = requester.privilege >= Privilege.MOD and same_community(request.requester, requester)
        if not (
            owner_id(requester) == owner_id(request.requester)
            or moderator_here
            or requester.privilege >= Privilege.OWNER
        ):
            raise NotAllowed(
                "Only the person who asked for it, or a moderator where it was asked, can cancel it."
            )
        return await self.canceller.cancel(request, requester)

    async def check_owner(self, request_id: str, requester: Requester) -> GenerationRequest:
        """The request, if `requester` may use its buttons (its owner, or anyone where the community allows)."""
        request = await self.queue.load(request_id)
        await self._authorize(request, requester)
        return request

    @_counts_refusals
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
        action = _PRESS_ACTIONS.get(button.action)
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
            submission = await action(
                self, button, index, requester, source_id, reply_to or {}, answer or Answer()
            )
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
            action in _REMIXABLE and (await self.preferences.get(requester.platform, requester.user_id)).remix
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

    async def image(self, request_id: str, index: int, requester: Requester) -> StoredImage:
        """U1–U4: one finished image at full size, for whoever may press the result's buttons."""
        await self.check_owner(request_id, requester)
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE:
            raise InvalidRequest("button", "That request has no images to show.")
        return pick_image(result, index)

    async def loras(self, requester: Requester) -> str:
        """/loras: the operator's LoRA catalog, with those the requester's community turned off marked."""
        policy = await self.admission.communities.policy(community_of(requester))
        return lora_catalog(self.settings.adapters, policy.denied_loras)

    async def last_request(self, requester: Requester) -> str:
        """The user's most recent request id (for /cancel without an id)."""
        recent = await self.queue.recent(owner_id(requester), 1)
        if not recent:
            raise NotFound("You have no recent requests to cancel.")
        return recent[0]

    async def result(self, request_id: str) -> ResultEvent:
        return await self.results.load(request_id)

    # -- styles, /describe, and one's own results --------------------------------------------------------------

    async def list_styles(self, requester: Requester) -> list[NamedStyle]:
        """/styles: the presets `requester` may use where they are."""
        return await self.styles.all(requester)

    async def describe(
        self,
        requester: Requester,
        *,
        image: ImageSource | None = None,
        result_id: str | None = None,
        index: int = 0,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """/describe an upload (`image`) or image `index` of a result: four prompt suggestions, queued."""
        result = None
        if result_id is not None:
            await self.check_owner(result_id, requester)
            result = (result_id, index)
        return await self.describer.describe(
            requester, image=image, result=result, source_id=source_id, reply_to=reply_to
        )

    async def imagine_suggestion(
        self,
        describe_id: str,
        index: int,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """A suggestion's button: that prompt through the normal /imagine path (checks, quota, queue)."""
        described = await self.results.load(describe_id)
        await self._authorize_for(described.requester, requester)
        text = suggestion(described, index)
        return await self.imagine(text, requester, source_id=source_id, reply_to=reply_to)

    async def history(
        self, requester: Requester, anchor: str | None = None, *, older: bool = True
    ) -> History:
        """/history: a page of `requester`'s own results (the web gallery reads the same)."""
        return await self.library.history(requester, anchor, older)

    async def info(self, request_id: str, requester: Requester) -> ResultInfo:
        """/info: the command line that makes a result again, and its provenance in plain words."""
        return await self.library.info(request_id, requester)

    async def delete(self, request_id: str, requester: Requester) -> Deleted:
        """Delete one's own result: its files leave the public prefix and the cache."""
        return await self.library.delete_own(request_id, requester)

    async def show(self, request_id: str, requester: Requester) -> ResultEvent:
        """A result from one's /history, to post again with its buttons."""
        await self.check_owner(request_id, requester)
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE or not result.images:
            raise NotFound("That result has no images any more.")
        return result

    # -- helpers --------------------------------------------------------------------------------------------

    async def check_prompt(self, prompt: str, negative: str, requester: Requester) -> None:
        await self.admission.check_prompt(prompt, negative, requester)

    async def _parent(
        self, parent_id: str, requester: Requester
    ) -> tuple[GenerationRequest, ResultEvent, CommunityPolicy]:
        parent = await self.queue.load(parent_id)
        policy = await self._authorize(parent, requester)
        result = await self.results.load(parent_id)
        if result.kind is not EventKind.DONE:
            raise InvalidRequest("button", "That request has no images to work from.")
        await self.check_prompt(parent.prompt, parent.negative_prompt, requester)
        return parent, result, policy

    async def _authorize(self, request: GenerationRequest, requester: Requester) -> CommunityPolicy:
        """May `requester` use this request's buttons? Its owner may; others only in the same community, when
        that community lets everyone press. Returns the policy of the presser's community (bans, pauses apply)."""
        return await self._authorize_for(request.requester, requester)

    async def _authorize_for(self, owner: Requester, requester: Requester) -> CommunityPolicy:
        policy = await self.admission.admit(requester)
        if owner_id(requester) == owner_id(owner):
            return policy
        if same_community(owner, requester) and policy.buttons == "everyone":
            return policy
        raise NotAllowed("Only the person who asked for these images can use their buttons.")

    def _local_model(self, model: str) -> str:
        """Children of a cloud result are refined by the default local model (OpenAI can't do img2img here)."""
        if get_model(model).backend is BackendKind.OPENAI:
            return self.settings.default_model
        return model


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
_PRESS_ACTIONS: dict[str, _PressAction] = {
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
_REMIXABLE = frozenset(
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
