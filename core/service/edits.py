"""Every child of a finished image: variations, upscales, region edits, zooms, pans and rerolls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from core.commands.buttons import PAN_DIRECTIONS
from core.commands.derivation import (
    UPSCALE_STRENGTH,
    VARY_STRONG,
    VARY_SUBTLE,
    Derivation,
    child_request,
    fitting_size,
    pick_source,
    random_seeds,
    reroll_request,
    scoped_request_id,
)
from core.commands.dialogs import Picker
from core.commands.edits import (
    pan_edit,
    parse_zoom,
    region_edit,
    remix_prompt,
    upscale_edit,
    zoom_edit,
)
from core.commands.regions import cells_mask, check_cells, check_mask
from core.commands.uploads import Upload, read_upload
from core.errors import InvalidRequest
from core.jobs.queue import Submission
from core.models.catalog import get_model
from core.models.request import GenerationRequest, Mode, Requester
from core.models.result import EventKind, StoredImage
from core.service.commands import CommandService


class EditService(CommandService):
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
