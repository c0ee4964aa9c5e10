"""How the bot is governed: moderation, provenance, style presets, limits, quotas and tiers, privileges."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from core.models.policy import NsfwPolicy
from core.settings.base import Group


class ModerationSettings(Group):
    use_openai: bool = True  # also ask OpenAI's moderation endpoint when a key is configured
    fail_closed: bool = True  # refuse when a moderation check itself fails
    nsfw_policy: NsfwPolicy = NsfwPolicy.REFUSE
    nsfw_threshold: float = Field(default=0.5, ge=0, le=1)
    quarantine: bool = True  # keep refused images under a private prefix for moderators
    image_check: bool = True


class ProvenanceSettings(Group):
    """Content Credentials (C2PA) and the invisible watermark on every stored image.

    Without a certificate and key, a clearly named development certificate (and its CA) is made on first run under
    IMAGEBOT_DATA_DIR/provenance: signatures then validate, but no viewer trusts that signer.
    """

    sign: bool = True
    certificate_path: Path | None = None  # PEM chain: the signing certificate first, then its issuers
    key_path: Path | None = None  # PEM private key (ES256 / P-256)
    certificate_pem: SecretStr | None = None  # the same, given as secrets instead of files
    key_pem: SecretStr | None = None
    timestamp_url: str | None = None  # an RFC 3161 time-stamp authority; None: no trusted timestamp
    trust_anchors_path: Path | None = None  # PEM roots trusted when reading images (/admin check, /info)
    on_failure: Literal["refuse", "unsigned"] = (
        "refuse"  # when signing fails: don't publish, or publish unsigned
    )
    watermark: bool = True

    @model_validator(mode="after")
    def _pairs(self) -> ProvenanceSettings:
        if (self.certificate_path is None) != (self.key_path is None):
            raise ValueError("set both certificate_path and key_path, or neither")
        if (self.certificate_pem is None) != (self.key_pem is None):
            raise ValueError("set both certificate_pem and key_pem, or neither")
        return self


class StylePreset(Group):
    """A --style preset: `template` holds the user's prompt where it says {prompt}; `negative` is added to --no."""

    template: str = Field(min_length=1, max_length=500)
    negative: str = Field(default="", max_length=500)

    @field_validator("template")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if "{prompt}" not in value:
            raise ValueError("a style's template must contain {prompt}, where the user's prompt goes")
        return value


class LimitsSettings(Group):
    max_prompt_chars: int = Field(default=1500, ge=10)
    max_negative_chars: int = Field(default=500, ge=0)
    max_images: int = Field(default=4, ge=1, le=4)
    default_images: int = Field(default=4, ge=1, le=4)
    # An upload (img2img) may declare at most this many pixels; checked before it is decoded (bombs).
    max_upload_pixels: int = Field(default=4096 * 4096, ge=64 * 64)


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
