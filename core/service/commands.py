"""/imagine: a command (and its upload) checked, then served from the cache or queued once."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from core.commands.adapters import check_allowed
from core.commands.canvas import inpaint_size
from core.commands.derivation import (
    IMG2IMG_STRENGTH,
    Source,
    request_from_options,
    scoped_request_id,
)
from core.commands.edits import (
    INPAINT_STRENGTH,
)
from core.commands.grammar import ImagineOptions, UserDefaults, parse_imagine
from core.commands.regions import region_mask
from core.commands.uploads import Upload, fit_aspect, has_size_flag, read_upload, store_upload
from core.errors import InvalidRequest
from core.governance.community import CommunityPolicy
from core.governance.quotas import owner_id
from core.governance.styles import apply_style
from core.jobs.queue import Submission
from core.models.catalog import get_model
from core.models.request import ControlRef, GenerationRequest, Mode, Requester
from core.service.base import ServiceBase, SourceFetcher, counts_refusals

log = logging.getLogger(__name__)


class CommandService(ServiceBase):
    # -- commands -------------------------------------------------------------------------------------------

    @counts_refusals
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

    @counts_refusals
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
        standing = await self.queue.standing(request.request_id, route.queue, route.slots, request)
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
