"""bench/architecture.py: the plain loop and imagebot are asked for the same work on the same weights."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.architecture import Architecture, add_arguments, from_arguments, work
from core.commands.grammar import parse_imagine
from core.models.catalog import get_model
from core.settings import LimitsSettings, Settings
from worker.vae import vae_source


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), ("tiny", 64, 64, 2)),
        (("--model", "sd15", "--size", "256x256", "--steps", "4"), ("sd15", 256, 256, 4)),
        (("--model", "sd15"), ("sd15", 512, 512, 30)),
        (("--model", "sdxl", "--size", "1024X768"), ("sdxl", 1024, 768, 30)),
    ],
)
def test_imagebot_is_asked_for_exactly_the_plain_loops_work(
    argv: tuple[str, ...], expected: tuple[str, int, int, int], tmp_path: Path
) -> None:
    args = arguments(*argv)
    arch = Architecture(args.model, tmp_path / "weights", *work(args))
    settings = Settings(**arch.settings())  # type: ignore[arg-type]

    options = parse_imagine(
        f"a lighthouse at dusk --n 1{arch.flags}",
        default_model=settings.default_model,
        limits=LimitsSettings(),
    )

    assert (options.model, options.width, options.height, options.steps) == expected
    assert options.notes == ()  # nothing snapped or changed on the way
    assert settings.default_model == args.model
    assert settings.worker.models == [args.model]
    assert settings.worker.model_paths == {args.model: tmp_path / "weights"}
    # nothing to download: the worker decodes with the folder's own VAE (not SDXL's fp16-safe one from the Hub)
    assert vae_source(get_model(args.model), "float16", settings.worker) is None


def test_a_size_that_is_not_width_x_height_is_refused_with_an_example() -> None:
    with pytest.raises(SystemExit, match=r"write it as WIDTHxHEIGHT, e\.g\. 512x512"):
        work(arguments("--size", "512"))


def test_the_default_is_the_tiny_model_built_under_the_cache(tmp_path: Path) -> None:
    arch = from_arguments(arguments("--model-cache", str(tmp_path)))

    assert arch.name == "tiny"
    assert (arch.folder / "model_index.json").is_file()
    assert arch.folder.parent == tmp_path
    assert arch.describe() == "tiny (random weights) 64×64, 2 steps"
