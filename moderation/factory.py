"""Builds the prompt and image moderators that Settings ask for; called once at start-up."""

from __future__ import annotations

import importlib.util
import logging
from concurrent.futures import Executor

import redis.asyncio as aioredis
from arq.connections import ArqRedis

from core.errors import ConfigError
from core.governance.admin import AdminService
from core.models.verdict import AllowAll, ImageModerator, PromptModerator
from core.service import ImagineService
from core.settings import Settings
from moderation.community_terms import CommunityBlocklist
from moderation.default_terms import default_blocklist
from moderation.prompt_check import PromptCheck
from moderation.provenance import ProvenanceCheck

log = logging.getLogger(__name__)


def build_prompt_moderator(settings: Settings, redis: aioredis.Redis | None) -> PromptCheck:
    """Default terms, the communities' terms (when a Redis client is given) and OpenAI's check when enabled."""
    remote: PromptModerator | None = None
    if settings.moderation.use_openai and settings.openai.enabled:
        from moderation.openai_check import OpenAIPromptCheck  # needs the `openai` extra

        remote = OpenAIPromptCheck(settings.openai)
    community = CommunityBlocklist(redis) if redis is not None else None
    log.info(
        "prompt moderation: default terms, community terms %s, openai %s, fail %s",
        "on" if community else "off",
        "on" if remote else "off",
        "closed" if settings.moderation.fail_closed else "open",
    )
    return PromptCheck(
        default=default_blocklist(),
        community=community,
        remote=remote,
        fail_closed=settings.moderation.fail_closed,
    )


def build_image_moderator(settings: Settings, executor: Executor | None = None) -> ImageModerator:
    """NudeNet when IMAGEBOT_MODERATION__IMAGE_CHECK is on (the default), else AllowAll. With `executor` (a
    worker's post-processing threads), each check runs there on one onnxruntime thread."""
    if not settings.moderation.image_check:
        log.warning("image moderation is off (IMAGEBOT_MODERATION__IMAGE_CHECK=false)")
        return AllowAll()
    if importlib.util.find_spec("nudenet") is None:
        raise ConfigError(
            "IMAGEBOT_MODERATION__IMAGE_CHECK is on but nudenet is not installed: "
            "install imagebot[moderation] or set IMAGEBOT_MODERATION__IMAGE_CHECK=false"
        )
    from moderation.image_check import NudeNetImageCheck  # numpy and nudenet only where images are checked

    return NudeNetImageCheck(
        threshold=settings.moderation.nsfw_threshold,
        threads=None if executor is None else 1,
        executor=executor,
    )


def build_admin(settings: Settings, service: ImagineService, redis: ArqRedis) -> AdminService:
    """The admin commands over the same Redis, store and quotas as `service`, with the communities' terms."""
    return AdminService(
        redis,
        settings,
        service.store,
        CommunityBlocklist(redis),
        service.admission.quotas,
        provenance=build_provenance_reader(settings),
    )


def build_provenance_reader(settings: Settings) -> ProvenanceCheck:
    """What /info and /admin check read an image's Content Credentials and watermark with."""
    return ProvenanceCheck.from_path(settings.provenance.trust_anchors_path)
