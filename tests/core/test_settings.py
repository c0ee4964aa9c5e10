"""Settings check themselves: a bad value stops start-up with a message naming its variable, and the ecosystem's
own variables (OPENAI_*, AWS_ENDPOINT_URL_S3) are read, ranked below the IMAGEBOT_ ones, and checked the same way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from core.errors import ConfigError
from core.models.policy import NsfwPolicy
from core.settings import (
    OpenAISettings,
    SentinelAddress,
    Settings,
    load_settings,
    redacted_url,
    sentinel_address,
    updated,
)

ECOSYSTEM = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ECOSYSTEM:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("overrides", "variable", "advice"),
    [
        ({"redis_url": "localhost:6379"}, "IMAGEBOT_REDIS_URL", "redis://localhost:6379"),
        (
            {"redis_url": "http://cache:6379"},
            "IMAGEBOT_REDIS_URL",
            "start with redis:// or rediss:// or unix://",
        ),
        ({"redis_url": "redis://cache:99999/0"}, "IMAGEBOT_REDIS_URL", "invalid port number"),
        ({"redis_url": "redis+sentinel://s1:26379,s2:26379"}, "IMAGEBOT_REDIS_URL", "names no master"),
        ({"redis_url": "redis+sentinel://s1:x/mymaster"}, "IMAGEBOT_REDIS_URL", "'x' is not a port"),
        ({"redis_url": "redis+sentinel://:pw@s1/mymaster/zero"}, "IMAGEBOT_REDIS_URL", "must be a number"),
        ({"telegram": {"base_url": "api.telegram.org/bot"}}, "IMAGEBOT_TELEGRAM__BASE_URL", "https://api."),
        ({"telegram": {"webhook_url": "ftp://bot.example"}}, "IMAGEBOT_TELEGRAM__WEBHOOK_URL", "https://"),
        (
            {"discord": {"api_base": "discord.com/api"}},
            "IMAGEBOT_DISCORD__API_BASE",
            "https://discord.com/api",
        ),
        (
            {"discord": {"gateway_url": "https://gw.example"}},
            "IMAGEBOT_DISCORD__GATEWAY_URL",
            "wss:// or ws://",
        ),
        (
            {"openai": {"base_url": "localhost:8080/v1"}},
            "IMAGEBOT_OPENAI__BASE_URL",
            "https://localhost:8080/v1",
        ),
        (
            {"storage": {"public_base_url": "cdn.example"}},
            "IMAGEBOT_STORAGE__PUBLIC_BASE_URL",
            "https://cdn.",
        ),
        (
            {"storage": {"backend": "s3", "s3_bucket": "ok-bucket", "s3_endpoint_url": "minio:9000"}},
            "IMAGEBOT_STORAGE__S3_ENDPOINT_URL",
            "https://minio:9000",
        ),
        (
            {"storage": {"backend": "s3", "s3_bucket": "My_Bucket"}},
            "IMAGEBOT_STORAGE__S3_BUCKET",
            "lowercase",
        ),
        ({"moderation": {"nsfw_policy": "sometimes"}}, "IMAGEBOT_MODERATION__NSFW_POLICY", "'refuse'"),
        (
            {"worker": {"model_paths": {"sd-99": "/models/x"}}},
            "IMAGEBOT_WORKER__MODEL_PATHS",
            "Choose one of",
        ),
        ({"worker": {"model_paths": {"dall-e-3": "/models/x"}}}, "IMAGEBOT_WORKER__MODEL_PATHS", "remove it"),
        ({"worker": {"vae": {"sdxll": "/vaes/x"}}}, "IMAGEBOT_WORKER__VAE", "or a family: flux, sd15"),
        (
            {"worker": {"live_preview_autoencoder": {"gpt-image-1": "madebyollin/taesd"}}},
            "IMAGEBOT_WORKER__LIVE_PREVIEW_AUTOENCODER",
            "remove it",
        ),
    ],
)
def test_a_bad_value_names_its_variable_and_what_to_write(
    overrides: dict[str, object], variable: str, advice: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(**overrides)
    assert refused.value.message.startswith(f"Invalid configuration — {variable}: ")
    assert advice in refused.value.message


def test_a_bad_url_from_the_environment_names_the_variable_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGEBOT_REDIS_URL", "http://:hunter2@cache:6379/0")
    with pytest.raises(ConfigError, match=re.escape("IMAGEBOT_REDIS_URL: 'http://cache:6379/0'")) as refused:
        load_settings()
    assert "hunter2" not in refused.value.message


def test_per_model_vaes_and_preview_autoencoders_are_keyed_by_family_or_catalog_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "IMAGEBOT_WORKER__VAE", '{"SDXL": "madebyollin/sdxl-vae-fp16-fix", "SD1.5": "/vaes/mse"}'
    )
    monkeypatch.setenv("IMAGEBOT_WORKER__LIVE_PREVIEW_AUTOENCODER", '{"sd15": "madebyollin/taesd"}')

    worker = load_settings().worker

    assert worker.vae == {"sdxl": "madebyollin/sdxl-vae-fp16-fix", "sd15": "/vaes/mse"}
    assert worker.live_preview_autoencoder == {"sd15": "madebyollin/taesd"}


def test_model_paths_are_read_from_json_and_keyed_by_catalog_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBOT_WORKER__MODEL_PATHS", '{"SD1.5": "/models/sd15", "sdxl": "/models/sdxl"}')

    paths = load_settings().worker.model_paths

    assert paths == {"sd15": Path("/models/sd15"), "sdxl": Path("/models/sdxl")}


def test_urls_are_kept_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """No trailing slash is added: the Telegram token is appended to base_url, and boto3 takes the endpoint as is."""
    monkeypatch.setenv("IMAGEBOT_TELEGRAM__BASE_URL", "http://127.0.0.1:8081/bot")
    monkeypatch.setenv("IMAGEBOT_STORAGE__S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("IMAGEBOT_REDIS_URL", "unix:///run/redis/redis.sock")
    settings = load_settings()
    assert settings.telegram.base_url == "http://127.0.0.1:8081/bot"
    assert settings.storage.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.redis_url == "unix:///run/redis/redis.sock"
    assert (
        load_settings(redis_url="rediss://:pw@cache.example:6380/1").redis_url
        == "rediss://:pw@cache.example:6380/1"
    )


def test_the_ecosystem_variables_fill_in_below_the_imagebot_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("IMAGEBOT_OPENAI__MODEL", "dall-e-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://any-aws-service:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:2")

    settings = load_settings()
    assert (
        settings.openai.api_key is not None and settings.openai.api_key.get_secret_value() == "sk-from-openai"
    )
    assert (settings.openai.base_url, settings.openai.model) == ("http://127.0.0.1:8080/v1", "dall-e-3")
    assert settings.storage.s3_endpoint_url == "http://s3-only:2"  # the S3-specific one wins

    monkeypatch.setenv("IMAGEBOT_OPENAI__API_KEY", "sk-from-imagebot")
    monkeypatch.setenv("IMAGEBOT_STORAGE__S3_ENDPOINT_URL", "http://mine:3")
    settings = load_settings()
    assert (
        settings.openai.api_key is not None
        and settings.openai.api_key.get_secret_value() == "sk-from-imagebot"
    )
    assert settings.storage.s3_endpoint_url == "http://mine:3"


def test_explicit_arguments_take_nothing_from_the_ecosystem(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test or the composition root passes wins, even an explicit None (the tests' "no cloud")."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    assert Settings(openai={"api_key": None}).openai.api_key is None  # type: ignore[arg-type]
    given = OpenAISettings(model="dall-e-3")
    assert Settings(openai=given).openai == given


def test_a_bad_ecosystem_value_names_the_ecosystem_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8080/v1")
    with pytest.raises(ConfigError, match=r"— OPENAI_BASE_URL: .*https://localhost:8080/v1"):
        load_settings()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "minio:9000")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    with pytest.raises(ConfigError, match=r"— AWS_ENDPOINT_URL_S3: .*https://minio:9000"):
        load_settings()
    monkeypatch.setenv("IMAGEBOT_STORAGE__S3_ENDPOINT_URL", "minio:9001")  # now it is ours that is wrong
    with pytest.raises(ConfigError, match=r"— IMAGEBOT_STORAGE__S3_ENDPOINT_URL: .*https://minio:9001"):
        load_settings()


def test_the_nsfw_policy_is_typed_and_keeps_its_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBOT_MODERATION__NSFW_POLICY", "spoiler")
    settings = load_settings()
    assert settings.moderation.nsfw_policy is NsfwPolicy.SPOILER
    assert settings.moderation.model_dump(mode="json")["nsfw_policy"] == "spoiler"


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_database() -> None:
    url = "redis+sentinel://:p%40ss@sentinel-1:26380,sentinel-2,10.0.0.3:26381/imagebot/2"
    settings = load_settings(redis_url=url)
    assert settings.redis_url == url
    assert sentinel_address(url) == SentinelAddress(
        sentinels=(("sentinel-1", 26380), ("sentinel-2", 26379), ("10.0.0.3", 26381)),
        master="imagebot",
        db=2,
        password="p@ss",
    )
    assert sentinel_address("redis://cache:6379/0") is None
    assert redacted_url(url) == "redis+sentinel://sentinel-1:26380,sentinel-2,10.0.0.3:26381/imagebot/2"


def test_a_change_names_only_what_it_changes_and_is_checked() -> None:
    settings = Settings(openai={"api_key": "sk-1"}, worker={"max_jobs": 3})  # type: ignore[arg-type]
    changed = updated(settings, {"worker": {"poll_delay_s": 0.5}, "owners": ["telegram:1"]})
    assert (changed.worker.max_jobs, changed.worker.poll_delay_s, changed.owners) == (3, 0.5, ["telegram:1"])
    assert changed.openai.api_key == SecretStr("sk-1") and settings.worker.poll_delay_s != 0.5
    with pytest.raises(ValidationError, match="lend_idle_cores"):  # a stale name is refused, not ignored
        updated(settings, {"worker": {"lend_idle_cores": True}})
    with pytest.raises(ValidationError, match="WebSettings\nport"):
        updated(settings, {"web": {"port": 70000}})
