"""The services imagebot talks to: storage, OpenAI, Telegram, Discord, and its own web pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.settings.base import Group
from core.settings.urls import (
    HttpUrlText,
    WebSocketUrlText,
)

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class StorageSettings(Group):
    backend: Literal["local", "s3"] = "local"
    local_dir: Path = Path("imagebot-data/storage")
    # Base URL the images are reachable at: a CDN in front of the bucket, or the local HTTP server.
    public_base_url: HttpUrlText | None = None
    # Local storage without a public_base_url: the bots serve the images on 127.0.0.1 at this port (0: any free
    # port; a fixed one keeps the links in old messages working after a restart).
    serve_port: int = Field(default=8780, ge=0, lt=65536)
    s3_bucket: str | None = None
    s3_prefix: str = ""
    # Defaults to AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (MinIO, R2, moto); None means AWS itself.
    s3_endpoint_url: HttpUrlText | None = None
    s3_region: str | None = None
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    presign_ttl_s: int = Field(default=7 * 24 * 3600, gt=0, le=7 * 24 * 3600)

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        if value is not None and (not _BUCKET_NAME.fullmatch(value) or ".." in value):
            raise PydanticCustomError(
                "bucket_name",
                "'{value}' is not a valid bucket name; use 3-63 lowercase letters, digits, dots or hyphens, "
                "starting and ending with a letter or digit",
                {"value": value},
            )
        return value

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StorageSettings:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("storage backend 's3' needs IMAGEBOT_STORAGE__S3_BUCKET")
        return self


def _default_prices() -> dict[str, dict[str, dict[str, float]]]:
    from core.models.pricing import DEFAULT_PRICES

    return {
        model: {quality: dict(sizes) for quality, sizes in row.items()}
        for model, row in DEFAULT_PRICES.items()
    }


class OpenAISettings(Group):
    api_key: SecretStr | None = None  # or OPENAI_API_KEY
    base_url: HttpUrlText | None = None  # or OPENAI_BASE_URL
    model: str = "gpt-image-1"
    quality: str = "standard"  # either model's words: standard/hd or low/medium/high (core.models.pricing)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    # USD per image: model → quality → "WxH" (core.models.pricing); charged to quotas.openai_daily_budget_usd
    prices: dict[str, dict[str, dict[str, float]]] = Field(default_factory=_default_prices)
    describe_cost_usd: float = Field(default=0.004, ge=0)  # one /describe by OpenAI's vision model
    moderation_model: str = "omni-moderation-latest"

    @model_validator(mode="after")
    def _priced(self) -> OpenAISettings:
        from core.models.pricing import QUALITIES, missing_prices

        if self.quality not in QUALITIES:
            raise ValueError(f"quality {self.quality!r} is not one of {', '.join(QUALITIES)}")
        for row in self.prices.values():
            for sizes in row.values():
                if any(price < 0 for price in sizes.values()):
                    raise ValueError("prices must be 0 or more US dollars per image")
        from core.models.catalog import CATALOG, BackendKind

        paid = [spec.name for spec in CATALOG if spec.backend is BackendKind.OPENAI]
        missing = [size for model in paid for size in missing_prices(self.prices, model, self.quality)]
        if missing:
            raise ValueError(
                f"prices has no price for {', '.join(missing)}; add them (USD per image) so the paid "
                "budget can be kept"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())


class TelegramSettings(Group):
    token: SecretStr | None = None
    base_url: HttpUrlText = "https://api.telegram.org/bot"  # the token is appended to it
    base_file_url: HttpUrlText = "https://api.telegram.org/file/bot"
    webhook_url: HttpUrlText | None = None  # public URL; long polling when unset
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, gt=0, lt=65536)


class DiscordSettings(Group):
    token: SecretStr | None = None
    api_base: HttpUrlText = "https://discord.com/api/v10"
    gateway_url: WebSocketUrlText | None = None  # None: the library's default gateway
    sharded: bool = False


class WebSettings(Group):
    """The web front end (`imagebot web`): where it listens, and the signed links the bots hand out.

    Without a `secret` it serves one local user (the embedded default: bind it to 127.0.0.1). With one, it is a
    community deployment: a visitor is whoever a signed, expiring link from a bot says (HMAC-SHA256 with the
    secret), and the bots add those links to their replies when `public_url` is set too.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8790, ge=0, lt=65536)  # 0: any free port
    public_url: HttpUrlText | None = None  # how users reach the pages, e.g. https://imagebot.example
    secret: SecretStr | None = None  # at least 32 characters; shared by the bots and the web process
    link_ttl_s: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)  # a link from a bot opens this long
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)  # the browser session it starts
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)

    @field_validator("secret", "public_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty variable (compose's `${WEB_SECRET:-}`) means not set."""
        if isinstance(value, SecretStr):
            return value if value.get_secret_value().strip() else None
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 32:
            raise ValueError("the web secret must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value
