"""The container set-up is checked against the code: every service runs a real CLI command, and every health
check asks an endpoint the process really serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from cli.health import ROUTES
from cli.main import _parser

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return dict(compose["services"])


def imagebot_services() -> dict[str, Any]:
    return {name: s for name, s in services().items() if s.get("image") == "imagebot:latest"}


def test_every_imagebot_service_runs_a_real_cli_command() -> None:
    found = imagebot_services()
    assert set(found) == {"worker-gpu", "worker-cloud", "telegram", "discord", "web"}
    for name, service in found.items():
        args = _parser().parse_args(service["command"])  # exits (SystemExit) on an unknown command or flag
        assert args.command in ("worker", "telegram", "discord", "web"), name


def test_every_health_check_asks_an_endpoint_the_process_serves() -> None:
    for name, service in imagebot_services().items():
        test = " ".join(service["healthcheck"]["test"])
        url = test[test.index("http://") :].split("'")[0]
        parts = urlsplit(url)
        assert parts.path in ROUTES, name
        assert str(parts.port) == service["environment"]["IMAGEBOT_OPS__HEALTH_PORT"], name


def test_redis_keeps_what_it_was_told_and_evicts_nothing() -> None:
    command = " ".join(services()["redis"]["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert "--requirepass" in command


def test_the_dockerfile_installs_what_the_services_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["imagebot"]' in dockerfile
    for package in ("core", "worker", "bots", "moderation", "cli"):
        assert f"COPY {package} {package}" in dockerfile
