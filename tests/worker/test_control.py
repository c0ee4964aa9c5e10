"""ControlNet: the control maps drawn with OpenCV, and a tiny ControlNet (from the tiny UNet, saved and loaded
like real weights) through the backend and through the whole queue, end to end."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.errors import InvalidRequest
from core.models.request import ControlRef, GenerationRequest, Platform, Requester
from core.models.result import EventKind
from core.settings import AdapterSettings, Settings
from tests.adapter_fixture import adapter_settings, tiny_controlnet_dir, tiny_lora_files  # noqa: F401
from tests.pipeline_fixture import Pipeline
from tests.settings import with_settings
from tests.worker.test_pipeline import wait_for_result
from worker.control import canny_map, openpose_map, scribble_map
from worker.diffusers_backend import DiffusersBackend
from worker.registry import ModelRegistry

RequestFactory = Callable[..., GenerationRequest]
ALICE = Requester(platform=Platform.CLI, user_id="alice", chat_id="c1")


def white_square(size: int = 64, box: tuple[int, int, int, int] = (16, 16, 47, 47)) -> Image.Image:
    image = Image.new("RGB", (size, size), "black")
    ImageDraw.Draw(image).rectangle(box, fill="white")
    return image


def test_canny_finds_the_border_of_a_white_square_and_nothing_else() -> None:
    edges = np.asarray(canny_map(white_square()).convert("L")) > 0

    ring = np.zeros_like(edges)
    ring[14:50, 14:50] = True
    ring[18:46, 18:46] = False  # within two pixels of the square's border
    assert edges.any()
    assert not edges[~ring].any()  # no edge inside the square or out in the black
    for row, column in ((16, 32), (47, 32), (32, 16), (32, 47)):  # each side has its edge
        assert edges[row - 1 : row + 2, column].any() or edges[row, column - 1 : column + 2].any()


def test_a_scribble_of_dark_lines_on_paper_becomes_white_strokes_on_black() -> None:
    paper = Image.new("RGB", (32, 32), "white")
    ImageDraw.Draw(paper).line((0, 16, 31, 16), fill="black", width=2)

    strokes = np.asarray(scribble_map(paper).convert("L"))

    assert strokes[16].min() == 255
    assert strokes[:10].max() == 0 and strokes[22:].max() == 0


def test_a_pose_is_drawn_as_openposes_coloured_skeleton_with_a_neck_between_the_shoulders() -> None:
    points = [[32.0, 10.0]] * 17  # COCO: 0 nose … 5/6 shoulders … 15/16 ankles
    points[5], points[6] = [20.0, 24.0], [44.0, 24.0]  # left and right shoulder
    scores = [0.0] * 17
    scores[0] = scores[5] = scores[6] = 0.9  # only the nose and the shoulders are seen

    drawn = np.asarray(openpose_map([(points, scores)], (64, 64)))

    assert tuple(drawn[24, 32]) == (255, 85, 0)  # the neck, OpenPose's point 1, in its colour
    assert tuple(drawn[24, 44]) == (255, 170, 0)  # the right shoulder (OpenPose 2)
    assert tuple(drawn[24, 20]) == (85, 255, 0)  # the left shoulder (OpenPose 5)
    assert tuple(drawn[10, 32]) == (255, 0, 0)  # the nose (OpenPose 0)
    assert tuple(drawn[17, 32]) == (0, 0, 153)  # neck to nose, the 13th limb, at 60 %
    assert drawn[50:].max() == 0  # nothing unseen is drawn (hips, legs)


@pytest.fixture
def backend(tiny_registry: ModelRegistry, adapter_settings: AdapterSettings) -> DiffusersBackend:  # noqa: F811
    return DiffusersBackend(tiny_registry, adapters=adapter_settings)


async def test_the_tiny_controlnet_follows_its_picture_and_returns_the_map(
    backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    def controlled(weight: float) -> GenerationRequest:
        return make_request(seeds=(4,), control=ControlRef(kind="canny", image="inputs/x.png", weight=weight))

    plain = (await backend.generate(make_request(seeds=(4,)), None)).images[0].image.tobytes()
    square = await backend.generate(controlled(1.0), None, control=white_square())
    again = await backend.generate(controlled(1.0), None, control=white_square())
    other = await backend.generate(controlled(1.0), None, control=white_square(box=(4, 30, 60, 34)))
    after = (await backend.generate(make_request(seeds=(4,)), None)).images[0].image.tobytes()

    assert square.control_image is not None and square.control_image.size == (64, 64)
    assert np.asarray(square.control_image).max() == 255
    image = square.images[0].image.tobytes()
    assert image == again.images[0].image.tobytes()
    assert image != plain and image != other.images[0].image.tobytes()
    assert after == plain


async def test_control_without_its_picture_is_refused(
    backend: DiffusersBackend, make_request: RequestFactory
) -> None:
    with pytest.raises(InvalidRequest):
        await backend.generate(make_request(control=ControlRef(kind="canny", image="inputs/x.png")), None)


@pytest.fixture
def settings(settings: Settings, adapter_settings: AdapterSettings) -> Settings:  # noqa: F811
    return with_settings(settings, adapters=adapter_settings)


async def test_control_and_lora_end_to_end_through_the_queue(pipeline: Pipeline) -> None:
    await pipeline.start_worker()
    service = pipeline.runtime.service
    picture = io.BytesIO()
    white_square(128).save(picture, format="PNG")

    submission = await service.imagine(
        "a house --control canny --cw 0.9 --lora glow:0.6 --sampler DPM++ 2M Karras --seed 3 --n 1",
        ALICE,
        source_image=picture.getvalue(),
    )
    event = await wait_for_result(pipeline, submission.request_id)

    assert event.kind is EventKind.DONE, event.message
    request = await service.queue.load(submission.request_id)
    assert request.control is not None and request.control.kind == "canny" and request.control.weight == 0.9
    assert request.source_image is None and request.prompt == "pixel, a house"
    assert request.sampler == "dpm++ 2m karras" and [lora.name for lora in request.loras] == ["glow"]
    assert event.control is not None
    with Image.open(io.BytesIO(await service.store.get(event.control.key))) as shown:
        assert shown.size == (event.images[0].width, event.images[0].height) == (64, 64)
        assert np.asarray(shown.convert("L")).max() == 255  # the square's edges
