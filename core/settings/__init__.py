"""All configuration, as one typed object built once at start-up and passed down.

Environment variables use the prefix IMAGEBOT_ and `__` for nesting (IMAGEBOT_WORKER__MAX_JOBS=2).
The ecosystem's own variables work too, below every IMAGEBOT_ one: OPENAI_API_KEY, OPENAI_BASE_URL and
AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) are read by a settings source of their own (`EcosystemVariables`);
the other AWS_* (credentials, region) are boto3's to read. Tests build Settings(...) explicitly.

Settings validate themselves, so no other module checks them again: every URL field is parsed by pydantic's
AnyUrl and takes only its own schemes (http(s), ws(s), redis/rediss/unix), keeping the text as written (no
trailing slash added); an S3 bucket name follows S3's rules; and `load_settings` names the variable of every
bad value, the ecosystem's own when that is where the value came from.

One module per concern: `base` (the prefix, the group base), `urls` (URL fields, Sentinel addresses),
`services`, `worker`, `governance`, `operations`, `adapters` (the groups), `root` (`Settings`, `load_settings`).
"""

from core.settings.adapters import CONTROL_KINDS, AdapterSettings, ControlSettings, LoraSettings
from core.settings.base import ECOSYSTEM_VARIABLES, ENV_PREFIX, Group, updated
from core.settings.governance import (
    LimitsSettings,
    ModerationSettings,
    PrivilegeSettings,
    ProvenanceSettings,
    QuotaSettings,
    StylePreset,
    TierLimits,
)
from core.settings.operations import DeliverySettings, OpsSettings, RetentionSettings
from core.settings.root import EcosystemVariables, Settings, env_name, load_settings
from core.settings.services import (
    DiscordSettings,
    OpenAISettings,
    StorageSettings,
    TelegramSettings,
    WebSettings,
)
from core.settings.urls import (
    SENTINEL_EXAMPLE,
    SENTINEL_PORT,
    SENTINEL_SCHEME,
    HttpUrlText,
    RedisUrlText,
    SentinelAddress,
    WebSocketUrlText,
    redacted_url,
    sentinel_address,
)
from core.settings.worker import CaptionerSettings, UpscalerSettings, WorkerSettings

__all__ = [
    "CONTROL_KINDS",
    "ECOSYSTEM_VARIABLES",
    "ENV_PREFIX",
    "SENTINEL_EXAMPLE",
    "SENTINEL_PORT",
    "SENTINEL_SCHEME",
    "AdapterSettings",
    "CaptionerSettings",
    "ControlSettings",
    "DeliverySettings",
    "DiscordSettings",
    "EcosystemVariables",
    "Group",
    "HttpUrlText",
    "LimitsSettings",
    "LoraSettings",
    "ModerationSettings",
    "OpenAISettings",
    "OpsSettings",
    "PrivilegeSettings",
    "ProvenanceSettings",
    "QuotaSettings",
    "RedisUrlText",
    "RetentionSettings",
    "SentinelAddress",
    "Settings",
    "StorageSettings",
    "StylePreset",
    "TelegramSettings",
    "TierLimits",
    "UpscalerSettings",
    "WebSettings",
    "WebSocketUrlText",
    "WorkerSettings",
    "env_name",
    "load_settings",
    "redacted_url",
    "sentinel_address",
    "updated",
]
