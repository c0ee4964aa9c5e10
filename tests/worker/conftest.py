"""Worker fixtures: the tiny random-weight model, built once per session, and a backend that renders with it.

The model is built under `<pytest basetemp>/models`, which is also the `model_cache_dir` of the shared
`settings` fixture (tests/conftest.py), so a ModelRegistry built from `settings.worker` reuses it for free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.models.request import GenerationRequest, Requester
from core.settings import WorkerSettings
from worker.diffusers_backend import DiffusersBackend
from worker.registry import ModelRegistry
from worker.tiny import ensure_tiny_model

RequestFactory = Callable[..., GenerationRequest]


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "models"


@pytest.fixture(scope="session")
def tiny_model_dir(model_cache_dir: Path) -> Path:
    """The folder of the tiny model (built on first use, about a second)."""
    return ensure_tiny_model(model_cache_dir)


@pytest.fixture(scope="session")
def tiny_registry(tiny_model_dir: Path, model_cache_dir: Path) -> Iterator[ModelRegistry]:
    """A CPU registry with the tiny model loaded and warm, shared by the session."""
    registry = ModelRegistry(WorkerSettings(model_cache_dir=model_cache_dir, device="cpu", dtype="float32"))
    registry.load("tiny")
    yield registry
    registry.close()


@pytest.fixture
def tiny_backend(tiny_registry: ModelRegistry) -> DiffusersBackend:
    """A DiffusersBackend on the warm tiny model (a fresh one per test: its lock belongs to the test's loop)."""
    return DiffusersBackend(tiny_registry)


@pytest.fixture
def make_request() -> RequestFactory:
    """Builds a tiny-model GenerationRequest (64×64, 2 steps, one seed); keyword arguments override fields."""

    def build(**overrides: object) -> GenerationRequest:
        fields: dict[str, object] = {
            "request_id": "req-test",
            "prompt": "a lighthouse at dusk",
            "width": 64,
            "height": 64,
            "steps": 2,
            "guidance": 5.0,
            "seeds": (1,),
            "model": "tiny",
            "requester": Requester(platform="cli", user_id="tester", chat_id="local"),
        }
        fields.update(overrides)
        return GenerationRequest(**fields)

    return build
