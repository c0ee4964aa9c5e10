"""The NudeNet image check on real images, and the policy that decides what happens to a refused image.

The "exposed" test image is a schematic drawing (a skin-coloured figure with two circles for breasts) that
the bundled detector reports as FEMALE_BREAST_EXPOSED at about 0.75; the same drawing with a shirt over it
is reported clean. Both are drawn here, so the tests need no image files and no network.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.errors import ConfigError
from core.models.verdict import Outcome, Verdict
from core.settings import ModerationSettings
from moderation import image_check
from moderation.image_check import ImageAction, ImagePolicy, NudeNetImageCheck
from tests.drawings import figure


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def check() -> Iterator[NudeNetImageCheck]:
    checker = NudeNetImageCheck(threshold=0.5)
    checker.warm_up()
    yield checker


async def test_an_exposed_figure_is_refused_as_nsfw_with_scores(check: NudeNetImageCheck) -> None:
    verdict = await check.check_image(encode(figure(dressed=False)))
    assert verdict.outcome is Outcome.REFUSED
    assert verdict.categories == ("nsfw",)
    assert verdict.reason_code == "nsfw_image"
    assert verdict.scores["FEMALE_BREAST_EXPOSED"] >= 0.5
    assert "BELLY_EXPOSED" not in verdict.scores  # only classes that can refuse are reported
    assert "different prompt" in verdict.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_the_same_figure_dressed_is_allowed(check: NudeNetImageCheck, fmt: str) -> None:
    assert (await check.check_image(encode(figure(dressed=True), fmt))).outcome is Outcome.ALLOWED
    assert (await check.check_image(encode(figure(dressed=False), fmt))).outcome is Outcome.REFUSED


async def test_clean_synthetic_images_are_allowed(check: NudeNetImageCheck) -> None:
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    gradient = Image.fromarray(np.tile(np.arange(512, dtype=np.uint8)[None, :, None] // 2, (512, 1, 3)))
    palette = Image.new("P", (512, 512), 3)
    for image in (noise, gradient, palette, Image.new("LA", (300, 200), (128, 255))):
        assert (await check.check_image(encode(image))).outcome is Outcome.ALLOWED


async def test_bytes_are_read_the_way_nudenet_reads_a_file(check: NudeNetImageCheck, tmp_path: Path) -> None:
    from nudenet import NudeDetector

    path = tmp_path / "figure.png"
    figure(dressed=False, background=(200, 200, 200)).save(path)
    from_file: dict[str, float] = {}
    for detection in NudeDetector().detect(str(path)):
        if detection["class"] in image_check.EXPOSED_CLASSES:
            from_file[detection["class"]] = max(from_file.get(detection["class"], 0.0), detection["score"])
    verdict = await check.check_image(path.read_bytes())
    assert from_file
    assert verdict.scores == pytest.approx(from_file, abs=1e-6)


async def test_a_higher_threshold_lets_the_drawing_through() -> None:
    lenient = NudeNetImageCheck(threshold=0.95)
    verdict = await lenient.check_image(encode(figure(dressed=False)))
    assert verdict.outcome is Outcome.ALLOWED
    assert 0.5 <= verdict.scores["FEMALE_BREAST_EXPOSED"] < 0.95


async def test_bytes_that_are_not_an_image_are_a_failed_check(check: NudeNetImageCheck) -> None:
    verdict = await check.check_image(b"this is not a PNG")
    assert verdict.outcome is Outcome.CHECK_FAILED
    assert verdict.reason_code == "image_check_failed"
    assert not verdict.allowed


class ScriptedDetector:
    """A detector seam that returns fixed detections, or raises like a broken ONNX session."""

    def __init__(self, detections: list[dict[str, Any]] | None) -> None:
        self.detections = detections

    def detect(self, image_path: Any) -> list[dict[str, Any]]:
        if self.detections is None:
            raise RuntimeError("onnxruntime: invalid input")
        return self.detections


async def test_a_detector_crash_is_a_failed_check_not_clean() -> None:
    verdict = await NudeNetImageCheck(0.5, detector=ScriptedDetector(None)).check_image(encode(figure(True)))
    assert verdict.outcome is Outcome.CHECK_FAILED
    assert "held back" in verdict.message


@pytest.mark.parametrize(
    ("detections", "outcome"),
    [
        (
            [{"class": "FEMALE_BREAST_COVERED", "score": 0.99}, {"class": "FACE_FEMALE", "score": 0.9}],
            "allowed",
        ),
        (
            [{"class": "BELLY_EXPOSED", "score": 0.9}, {"class": "MALE_BREAST_EXPOSED", "score": 0.9}],
            "allowed",
        ),
        ([{"class": "BUTTOCKS_EXPOSED", "score": 0.49}], "allowed"),
        ([{"class": "BUTTOCKS_EXPOSED", "score": 0.5}], "refused"),
        (
            [{"class": "MALE_GENITALIA_EXPOSED", "score": 0.3}, {"class": "ANUS_EXPOSED", "score": 0.8}],
            "refused",
        ),
        ([{"class": "FEMALE_GENITALIA_EXPOSED", "score": 0.51}], "refused"),
    ],
)
async def test_only_exposed_classes_at_the_threshold_refuse(
    detections: list[dict[str, Any]], outcome: str
) -> None:
    check = NudeNetImageCheck(0.5, detector=ScriptedDetector(detections))
    assert (await check.check_image(encode(figure(True)))).outcome == outcome


def test_threshold_outside_zero_to_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        NudeNetImageCheck(threshold=1.5)


async def test_concurrent_first_checks_load_the_detector_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []
    real_load = image_check._load_nudenet

    def counting_load() -> image_check.Detector:
        loads.append(1)
        return real_load()

    monkeypatch.setattr(image_check, "_load_nudenet", counting_load)
    fresh = NudeNetImageCheck(threshold=0.5)
    images = [encode(figure(dressed=i % 2 == 0)) for i in range(4)]
    verdicts = await asyncio.gather(*(fresh.check_image(image) for image in images))
    assert [v.outcome for v in verdicts] == [Outcome.ALLOWED, Outcome.REFUSED] * 2
    assert len(loads) == 1


NSFW = Verdict(Outcome.REFUSED, categories=("nsfw",), reason_code="nsfw_image")
OTHER = Verdict(Outcome.REFUSED, categories=("gore",), reason_code="other")
FAILED = Verdict(Outcome.CHECK_FAILED, reason_code="image_check_failed")
CLEAN = Verdict.allow()
D, S, Q = ImageAction.DELIVER, ImageAction.SPOILER, ImageAction.QUARANTINE


@pytest.mark.parametrize(
    ("policy", "verdict", "age_restricted", "action"),
    [
        ("refuse", CLEAN, False, D),
        ("refuse", NSFW, False, Q),
        ("refuse", NSFW, True, Q),
        ("spoiler", NSFW, False, Q),
        ("spoiler", NSFW, True, S),
        ("allow", NSFW, False, Q),
        ("allow", NSFW, True, D),
        ("allow", OTHER, True, Q),
        ("spoiler", CLEAN, True, D),
    ],
)
def test_image_policy(policy: str, verdict: Verdict, age_restricted: bool, action: ImageAction) -> None:
    settings = ModerationSettings(nsfw_policy=policy)
    assert ImagePolicy.from_settings(settings).decide(verdict, age_restricted) is action


def test_a_failed_check_follows_fail_closed() -> None:
    assert ImagePolicy("allow", fail_closed=True).decide(FAILED, age_restricted=True) is Q
    assert ImagePolicy("refuse", fail_closed=False).decide(FAILED, age_restricted=False) is D


async def test_a_workers_single_threaded_check_on_its_own_pool_gives_the_same_verdicts() -> None:
    """A worker runs the check on one onnxruntime thread in its post-processing pool (worker/threads.py)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="post")
    single = NudeNetImageCheck(threshold=0.5, threads=1, executor=pool)
    default = NudeNetImageCheck(threshold=0.5)
    images = [encode(figure(dressed=i % 2 == 0)) for i in range(4)]
    try:
        ours = await asyncio.gather(*(single.check_image(image) for image in images))
        theirs = [await default.check_image(image) for image in images]
    finally:
        pool.shutdown()
    assert [v.outcome for v in ours] == [Outcome.ALLOWED, Outcome.REFUSED] * 2
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.outcome is reference.outcome
        assert mine.scores.keys() == reference.scores.keys()
        assert all(abs(mine.scores[k] - reference.scores[k]) < 1e-4 for k in mine.scores)
