"""The one entry point every front end calls: turn a command or a button press into a queued request.

Front ends parse platform input, call these methods, and render what comes back (a Submission now, a
ResultEvent later on the platform's stream). No platform types, no ML, no retries here.
"""

from __future__ import annotations

import logging
import secrets
import time

from arq.connections import ArqRedis

from core.admission import Admission, same_community
from core.cache import ResultCache
from core.cancellation import Canceller
from core.catalog import BackendKind, get_model
from core.community import CommunityPolicy
from core.errors import InvalidRequest, NotAllowed, NotFound
from core.events import EventPublisher
from core.grammar import ImagineOptions, UserDefaults, parse_imagine
from core.ids import new_request_id
from core.privileges import Privilege
from core.queue import JobQueue, Submission
from core.quotas import owner_id
from core.request import GenerationRequest, Mode, Requester
from core.result import EventKind, ResultEvent, StoredImage
from core.result_store import ResultStore
from core.routing import Router
from core.settings import Settings
from core.storage import ImageStore
from core.uploads import fit_aspect, has_size_flag, store_upload
from core.verdict import PromptModerator
from core.workers import WorkerRegistry

log = logging.getLogger(__name__)

SEED_LIMIT = 2**32
IMG2IMG_STRENGTH = 0.6
VARY_STRONG = 0.65
VARY_SUBTLE = 0.35
UPSCALE_STRENGTH = 0.3


def _random_seeds(n: int) -> tuple[int, ...]:
    return tuple(secrets.randbelow(SEED_LIMIT) for _ in range(n))


class ImagineService:
    def __init__(
        self, redis: ArqRedis, settings: Settings, store: ImageStore, moderator: PromptModerator
    ) -> None:
        self.settings = settings
        self.store = store
        self.moderator = moderator
        self.queue = JobQueue(redis)
        self.events = EventPublisher(redis)
        self.cache = ResultCache(redis)
        self.results = ResultStore(redis)
        self.workers = WorkerRegistry(redis)
        self.router = Router(self.workers, cloud_enabled=settings.openai.enabled)
        self.admission = Admission(redis, settings, moderator)
        self.canceller = Canceller(redis, self.admission.quotas)

    # -- commands -------------------------------------------------------------------------------------------

    async def imagine(
        self,
        text: str,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
        defaults: UserDefaults | None = None,
        source_image: bytes | None = None,
    ) -> Submission:
        """/imagine: parse, check the prompt, and queue. `source_image` (an upload) makes it img2img.

        `source_id` identifies the platform message or interaction, so a redelivered command is queued once.
        """
        policy = await self.admission.admit(requester)
        options = parse_imagine(
            text,
            default_model=policy.default_model or self.settings.default_model,
            limits=self.settings.limits,
            defaults=defaults,
        )
        await self.admission.check_prompt(options.prompt, options.negative_prompt, requester)
        request_id = new_request_id(f"{requester.platform}:{source_id}" if source_id else None)
        mode, source_key, strength = Mode.TXT2IMG, None, options.strength
        width, height = options.width, options.height
        if source_image is not None:
            if not get_model(options.model).supports_img2img:
                raise InvalidRequest(
                    "model", f"{options.model} can't start from an image; pick a local model."
                )
            source_key, (src_w, src_h) = await store_upload(self.store, source_image)
            mode, strength = Mode.IMG2IMG, strength or IMG2IMG_STRENGTH
            if not has_size_flag(text):
                width, height = fit_aspect(options.model, src_w, src_h)
        elif options.strength is not None:
            raise InvalidRequest("strength", "--strength only applies when you start from an image.")
        request = self._request_from(
            options, request_id, requester, reply_to or {}, mode, source_key, strength, width, height
        ).model_copy(update={"image_policy": policy.nsfw})
        submission = await self.submit(request)
        return Submission(**{**submission.__dict__, "notes": options.notes})

    async def submit(self, request: GenerationRequest) -> Submission:
        """Serve from the cache, or reserve the quota and queue the request once; a repeat is reported as such."""
        owner = owner_id(request.requester)
        cached = await self.cache.get(request)
        if cached is not None:
            await self.queue.store(request)
            await self.queue.remember(owner, request.request_id)
            await self.results.save(cached)
            await self.events.publish(cached)
            return Submission(request.request_id, None, None, 0.0, cached=True)
        route = await self.router.route(request)
        if await self.queue.known(request.request_id):  # a redelivered command: no new charge, no new place
            position = await self.queue.position(request.request_id, route.queue)
            return Submission(request.request_id, route.queue, position, None, duplicate=True)
        score = await self.admission.reserve(request, route.queue)
        try:
            queued = await self.queue.enqueue(request, route.queue, score)
        except BaseException:
            await self.admission.quotas.refund(request.request_id)
            raise
        # Not queued means a concurrent twin won the race; its reservation is this one (same id): keep it.
        await self.queue.remember(owner, request.request_id)
        position = await self.queue.position(request.request_id, route.queue)
        eta = None
        if position:
            alive = len(await self.workers.serving(route.queue))
            eta = await self.queue.eta(route.queue, position, workers=alive)
        log.info(
            "request %s queued on %s (position %s, fallback %s)",
            request.request_id,
            route.queue,
            position,
            route.fallback,
        )
        return Submission(request.request_id, route.queue, position, eta, duplicate=not queued)

    async def vary(
        self,
        parent_id: str,
        index: int,
        requester: Requester,
        *,
        strong: bool = True,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """V1–V4: new images close to image `index` of a finished grid."""
        parent, result, policy = await self._parent(parent_id, requester)
        image = _pick(result, index)
        width, height = _fitting(self._local_model(parent.model), image.width, image.height)
        request = self._child(
            parent,
            requester,
            source_id,
            reply_to,
            mode=Mode.VARIATION,
            index=index,
            source=image.key,
            strength=VARY_STRONG if strong else VARY_SUBTLE,
            seeds=_random_seeds(parent.n),
            width=width,
            height=height,
            policy=policy,
        )
        return await self.submit(request)

    async def upscale(
        self,
        parent_id: str,
        index: int,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """Upscale 2×: Lanczos to twice the size, then a light img2img pass to restore detail."""
        parent, result, policy = await self._parent(parent_id, requester)
        image = _pick(result, index)
        model = self._local_model(parent.model)
        spec = get_model(model)
        width, height = image.width * 2, image.height * 2
        if max(width, height) > spec.max_side:
            raise InvalidRequest(
                "upscale",
                f"That image is already as large as {spec.name} can refine "
                f"(up to {spec.max_side} px a side), so it can't be upscaled further.",
            )
        request = self._child(
            parent,
            requester,
            source_id,
            reply_to,
            mode=Mode.UPSCALE,
            index=index,
            source=image.key,
            strength=UPSCALE_STRENGTH,
            seeds=(image.seed if image.seed is not None else _random_seeds(1)[0],),
            width=width,
            height=height,
            policy=policy,
            model=model,
        )
        return await self.submit(request)

    async def reroll(
        self,
        parent_id: str,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """🔄: the same parameters with new seeds."""
        parent = await self.queue.load(parent_id)
        policy = await self._authorize(parent, requester)
        await self.check_prompt(parent.prompt, parent.negative_prompt, requester)
        request = parent.model_copy(
            update={
                "request_id": new_request_id(f"{requester.platform}:{source_id}" if source_id else None),
                "seeds": _random_seeds(parent.n),
                "seed_explicit": False,
                "mode": Mode.REROLL if parent.mode is Mode.TXT2IMG else parent.mode,
                "parent_id": parent.request_id,
                "requester": requester,
                "reply_to": reply_to or {},
                "image_policy": policy.nsfw,
                "created_at": time.time(),
            }
        )
        return await self.submit(GenerationRequest.model_validate(request.model_dump()))

    async def cancel(self, request_id: str, requester: Requester) -> str:
        """Cancel a queued request (one's own, or anyone's for a moderator). Returns a CancelOutcome."""
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

    async def image(self, request_id: str, index: int, requester: Requester) -> StoredImage:
        """U1–U4: one finished image at full size, for whoever may press the result's buttons."""
        await self.check_owner(request_id, requester)
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE:
            raise InvalidRequest("button", "That request has no images to show.")
        return _pick(result, index)

    async def last_request(self, requester: Requester) -> str:
        """The user's most recent request id (for /cancel without an id)."""
        recent = await self.queue.recent(owner_id(requester), 1)
        if not recent:
            raise NotFound("You have no recent requests to cancel.")
        return recent[0]

    async def result(self, request_id: str) -> ResultEvent:
        return await self.results.load(request_id)

    # -- helpers --------------------------------------------------------------------------------------------

    async def check_prompt(self, prompt: str, negative: str, requester: Requester) -> None:
        await self.admission.check_prompt(prompt, negative, requester)

    def _request_from(
        self,
        options: ImagineOptions,
        request_id: str,
        requester: Requester,
        reply_to: dict[str, str],
        mode: Mode,
        source_key: str | None,
        strength: float | None,
        width: int,
        height: int,
    ) -> GenerationRequest:
        seeds = (
            tuple((options.seed + i) % SEED_LIMIT for i in range(options.n))
            if options.seed is not None
            else _random_seeds(options.n)
        )
        return GenerationRequest(
            request_id=request_id,
            prompt=options.prompt,
            negative_prompt=options.negative_prompt,
            width=width,
            height=height,
            steps=options.steps,
            guidance=options.guidance,
            seeds=seeds,
            seed_explicit=options.seed is not None,
            model=options.model,
            mode=mode,
            source_image=source_key,
            strength=strength,
            prefer_cloud=options.prefer_cloud,
            requester=requester,
            reply_to=reply_to,
        )

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
        policy = await self.admission.admit(requester)
        if owner_id(requester) == owner_id(request.requester):
            return policy
        if same_community(request.requester, requester) and policy.buttons == "everyone":
            return policy
        raise NotAllowed("Only the person who asked for these images can use their buttons.")

    def _local_model(self, model: str) -> str:
        """Children of a cloud result are refined by the default local model (OpenAI can't do img2img here)."""
        if get_model(model).backend is BackendKind.OPENAI:
            return self.settings.default_model
        return model

    def _child(
        self,
        parent: GenerationRequest,
        requester: Requester,
        source_id: str | None,
        reply_to: dict[str, str] | None,
        *,
        mode: Mode,
        index: int,
        source: str,
        strength: float,
        seeds: tuple[int, ...],
        width: int,
        height: int,
        policy: CommunityPolicy,
        model: str | None = None,
    ) -> GenerationRequest:
        model = model or self._local_model(parent.model)
        spec = get_model(model)
        return GenerationRequest(
            request_id=new_request_id(f"{requester.platform}:{source_id}" if source_id else None),
            prompt=parent.prompt,
            negative_prompt=parent.negative_prompt if spec.supports_negative else "",
            width=width,
            height=height,
            steps=parent.steps if model == parent.model else spec.default_steps,
            guidance=parent.guidance if model == parent.model else spec.default_guidance,
            seeds=seeds,
            model=model,
            mode=mode,
            source_image=source,
            strength=strength,
            parent_id=parent.request_id,
            parent_index=index,
            requester=requester,
            reply_to=reply_to or {},
            image_policy=policy.nsfw,  # where it will be shown, now
        )


def _fitting(model: str, width: int, height: int) -> tuple[int, int]:
    """The image's own size when `model` can render it, else its aspect ratio at the model's native area
    (an OpenAI result of 1792×1024 varied by a local model, say)."""
    spec = get_model(model)
    fits = spec.min_side <= min(width, height) and max(width, height) <= spec.max_side
    if fits and width % spec.size_multiple == 0 and height % spec.size_multiple == 0:
        return width, height
    return fit_aspect(model, width, height)


def _pick(result: ResultEvent, index: int) -> StoredImage:
    """Image `index` of the grid as first shown (by its own index, so a deleted neighbour shifts nothing)."""
    for image in result.images:
        if image.index == index:
            return image
    raise InvalidRequest("button", f"Image {index + 1} of that grid isn't available (any more).")
