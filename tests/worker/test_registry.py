"""Several models warm within a memory budget: the least recently used not in use is evicted, and reloaded on demand.

The variants are the tiny model under more names (a catalog entry each, the same weights): each loads its own copy,
so each takes the tiny model's memory, and a reloaded one renders what it rendered before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from core import constants as c
from core.errors import BackendUnavailable
from core.jobs.workers import WorkerRegistry
from core.models import catalog
from core.models.request import Platform, Requester
from core.models.result import EventKind
from core.settings import Settings, WorkerSettings
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from tests.worker.conftest import RequestFactory
from tests.worker.test_pipeline import wait_for_result
from worker.diffusers_backend import DiffusersBackend
from worker.memory import evictions
from worker.registry import ModelRegistry

VARIANTS = ("tiny-b", "tiny-c")
ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c1")
Budgeted = Callable[[float], ModelRegistry]


@pytest.fixture
def variants(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """The tiny model registered under two more names in the catalog, for this test only."""
    tiny = catalog.get_model("tiny")
    for name in VARIANTS:
        monkeypatch.setitem(catalog._BY_NAME, name, replace(tiny, name=name))
    return ("tiny", *VARIANTS)


@pytest.fixture(scope="module")
def tiny_bytes(tmp_path_factory: pytest.TempPathFactory) -> int:
    """What one copy of the tiny model's weights takes."""
    folder = tmp_path_factory.getbasetemp() / "models"
    registry = ModelRegistry(WorkerSettings(model_cache_dir=folder, device="cpu", dtype="float32"))
    size = registry.load("tiny").memory_bytes
    registry.close()
    return size


@pytest.fixture
def budgeted(model_cache_dir: Path, tiny_bytes: int, variants: tuple[str, ...]) -> Iterator[Budgeted]:
    """Registries whose budget holds `models` tiny copies (a fraction: room for the whole ones only)."""
    made: list[ModelRegistry] = []

    def build(models: float) -> ModelRegistry:
        settings = WorkerSettings(
            model_cache_dir=model_cache_dir,
            device="cpu",
            dtype="float32",
            model_memory_budget_gb=models * tiny_bytes / 2**30,
            models=list(variants),
        )
        made.append(ModelRegistry(settings))
        return made[-1]

    yield build
    for registry in made:
        registry.close()


def metric(name: str, model: str) -> float:
    return REGISTRY.get_sample_value(name, {"model": model}) or 0.0


def test_eviction_picks_the_least_recently_used_not_in_use_and_refuses_what_cannot_fit() -> None:
    resident = [("a", 3), ("b", 3), ("c", 3)]  # least recently used first

    assert evictions(resident, (), 3, 12) == []
    assert evictions(resident, (), 3, 9) == ["a"]
    assert evictions(resident, ("a",), 3, 9) == ["b"]
    assert evictions(resident, ("a",), 6, 9) == ["b", "c"]
    assert evictions(resident, ("a", "c"), 6, 9) is None  # only b may go, and that is not enough
    assert evictions(resident, (), 10, 9) is None  # larger than the whole budget
    assert evictions(resident, (), 100, 0) == []  # no budget


def test_the_budget_is_respected_by_evicting_the_least_recently_used(
    budgeted: Budgeted, tiny_bytes: int, caplog: pytest.LogCaptureFixture
) -> None:
    registry = budgeted(2.5)
    evicted_before = metric("imagebot_model_evictions_total", "tiny")
    loads_before = metric("imagebot_model_loads_total", "tiny")
    caplog.set_level(logging.INFO, logger="worker.registry")

    registry.load("tiny")
    registry.load("tiny-b")
    registry.load("tiny")  # used again: tiny-b is now the least recently used
    registry.load("tiny-c")
    assert registry.loaded_models() == ["tiny", "tiny-c"]
    registry.load("tiny-b")  # tiny is the least recently used now

    assert registry.loaded_models() == ["tiny-c", "tiny-b"]
    assert registry.resident_bytes() == 2 * tiny_bytes <= registry.settings.model_memory_budget_bytes
    assert metric("imagebot_model_evictions_total", "tiny") == evicted_before + 1
    assert metric("imagebot_model_loads_total", "tiny") == loads_before + 1  # the second use found it warm
    assert metric("imagebot_warm_models", "tiny") == 0
    assert metric("imagebot_warm_models", "tiny-b") == 1
    assert REGISTRY.get_sample_value("imagebot_model_memory_bytes", {"model": "tiny-c", "device": "cpu"}) == (
        tiny_bytes
    )
    evicted = [record.getMessage() for record in caplog.records if record.getMessage().startswith("evicted")]
    assert evicted == [
        "evicted model tiny-b (8.1 MiB, least recently used) to make room for tiny-c (8.1 MiB) within the "
        "20.4 MiB budget",
        "evicted model tiny (8.1 MiB, least recently used) to make room for tiny-b (8.1 MiB) within the "
        "20.4 MiB budget",
    ]


def test_a_model_in_use_is_never_evicted(budgeted: Budgeted) -> None:
    registry = budgeted(2.5)
    with registry.using("tiny"):
        registry.load("tiny-b")
        registry.load("tiny-c")  # tiny is the least recently used, but held: tiny-b goes
        assert registry.loaded_models() == ["tiny", "tiny-c"]
    registry.load("tiny-b")  # released: now tiny goes
    assert registry.loaded_models() == ["tiny-c", "tiny-b"]


def test_a_model_that_cannot_fit_beside_the_ones_in_use_is_refused_with_the_setting_to_change(
    budgeted: Budgeted,
) -> None:
    registry = budgeted(1.5)
    with registry.using("tiny"), pytest.raises(BackendUnavailable) as refused:
        registry.load("tiny-b")

    assert refused.value.message == (
        "Model “tiny-b” (8.1 MiB) does not fit beside the models in use (tiny) in the 12.2 MiB budget. Raise "
        "IMAGEBOT_WORKER__MODEL_MEMORY_BUDGET_GB, or serve fewer models on this worker."
    )
    assert registry.loaded_models() == ["tiny"]
    registry.load("tiny-b")  # once nothing holds tiny, it makes room
    assert registry.loaded_models() == ["tiny-b"]


def test_a_model_larger_than_the_budget_is_refused(budgeted: Budgeted) -> None:
    registry = budgeted(0.5)
    with pytest.raises(BackendUnavailable, match=r"“tiny” \(8.1 MiB\) is larger than the whole budget"):
        registry.load("tiny")
    assert registry.loaded_models() == []


def test_start_up_loads_every_configured_model_and_keeps_the_first_listed_warm(
    budgeted: Budgeted,
) -> None:
    registry = budgeted(2.5)
    loads_before = metric("imagebot_model_loads_total", "tiny-c")

    assert registry.load_configured() == ["tiny", "tiny-b", "tiny-c"]

    assert registry.loaded_models() == ["tiny-b", "tiny"]  # tiny-c was loaded (checked) first, then evicted
    assert metric("imagebot_model_loads_total", "tiny-c") == loads_before + 1


async def test_a_request_for_an_evicted_model_reloads_it_and_renders_the_same_bytes(
    budgeted: Budgeted, make_request: RequestFactory
) -> None:
    registry = budgeted(1.5)
    backend = DiffusersBackend(registry)
    first = await backend.generate(make_request(seeds=(5,)), None)
    other = await backend.generate(make_request(model="tiny-b", seeds=(5,)), None)
    assert registry.loaded_models() == ["tiny-b"]

    again = await backend.generate(make_request(seeds=(5,)), None)

    assert registry.loaded_models() == ["tiny"]
    assert again.images[0].image.tobytes() == first.images[0].image.tobytes()
    assert (
        other.images[0].image.tobytes() == first.images[0].image.tobytes()
    )  # the same weights, another copy
    await backend.close()


async def test_concurrent_jobs_on_two_models_with_room_for_one_each_render_what_they_render_alone(
    budgeted: Budgeted, make_request: RequestFactory
) -> None:
    """Each job's pre-load can be undone by the other's before its render: the render holds and reloads it."""
    registry = budgeted(1.5)
    backend = DiffusersBackend(registry)
    alone = await backend.generate(make_request(seeds=(9,)), None)
    requests = [
        make_request(model=model, seeds=(9,), request_id=f"r{i}") for i, model in enumerate(VARIANTS * 3)
    ]

    generations = await asyncio.gather(*(backend.generate(request, None) for request in requests))

    assert [generation.model for generation in generations] == [request.model for request in requests]
    assert {generation.images[0].image.tobytes() for generation in generations} == {
        alone.images[0].image.tobytes()
    }
    assert len(registry.loaded_models()) == 1
    await backend.close()


async def test_an_evicted_model_is_still_advertised_routed_here_and_rendered(
    pipeline: Pipeline,
    settings: Settings,
    tiny_bytes: int,
    variants: tuple[str, ...],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="worker.registry")
    worker = {"models": ["tiny", "tiny-b"], "model_memory_budget_gb": 1.5 * tiny_bytes / 2**30}
    await pipeline.start_worker(settings=with_settings(settings, worker=worker))
    workers = WorkerRegistry(pipeline.runtime.redis)

    (serving,) = await workers.serving(c.QUEUE_GPU)
    assert serving.models == ("tiny", "tiny-b")
    assert any(record.getMessage().startswith("evicted model tiny-b") for record in caplog.records)
    submission = await pipeline.runtime.service.imagine("a red boat --model tiny-b --seed 3", ALICE)
    assert submission.queue == c.QUEUE_GPU
    event = await wait_for_result(pipeline, submission.request_id)

    assert event.kind is EventKind.DONE, event.message
    assert event.model == "tiny-b"
