"""ControlNet: the user's picture → a control map (canny, scribble, depth, pose), and the pipeline that follows it.

Canny edges and scribbles are drawn with OpenCV. Depth and pose need an annotator model the operator configures
(ControlSettings.depth_annotator: a transformers depth-estimation model; pose_annotator: a VitPose model); the
grammar refuses them otherwise. ControlNet models are loaded once per (family, kind) and their pipelines built
once per (model, kind) with `from_pipe`, so they share the base model's weights and stay warm.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import InvalidRequest
from core.models.catalog import Family
from core.settings import ControlSettings
from worker.device import torch_dtype
from worker.registry import LoadedModel, hub_offline

logger = logging.getLogger(__name__)

CANNY_LOW, CANNY_HIGH = 100, 200
POSE_MIN_SCORE = 0.3
# OpenPose's 18 body points from COCO's 17 (what VitPose finds); None is the neck, between the shoulders.
_OPENPOSE_FROM_COCO = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
# OpenPose's limbs (pairs of its points) and colours, as openpose ControlNets were trained on them.
_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


def canny_map(image: Image.Image, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> Image.Image:
    """White edges on black (OpenCV's Canny on the grey picture), as RGB."""
    import cv2

    grey = np.asarray(image.convert("L"))
    edges = cv2.Canny(grey, low, high)
    return Image.fromarray(np.stack([edges] * 3, axis=-1), "RGB")


def openpose_map(people: list[tuple[list[list[float]], list[float]]], size: tuple[int, int]) -> Image.Image:
    """People's COCO keypoints ((x, y) and a score each) drawn as OpenPose's coloured skeleton on black."""
    import cv2

    canvas = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    for points, scores in people:
        body: list[tuple[int, int] | None] = []
        for coco in _OPENPOSE_FROM_COCO:
            pair = (5, 6) if coco is None else (coco, coco)
            if min(scores[pair[0]], scores[pair[1]]) < POSE_MIN_SCORE:
                body.append(None)
                continue
            x = (points[pair[0]][0] + points[pair[1]][0]) / 2
            y = (points[pair[0]][1] + points[pair[1]][1]) / 2
            body.append((round(x), round(y)))
        for index, (a, b) in enumerate(_LIMBS):
            start, end = body[a], body[b]
            if start is not None and end is not None:
                colour = tuple(int(c * 0.6) for c in _COLOURS[index])
                cv2.line(canvas, start, end, colour, 4)
        for index, point in enumerate(body):
            if point is not None:
                cv2.circle(canvas, point, 4, _COLOURS[index], -1)
    return Image.fromarray(canvas, "RGB")


def scribble_map(image: Image.Image) -> Image.Image:
    """White strokes on black: a drawing of dark lines on a light ground is inverted, then thresholded."""
    import cv2

    grey = np.asarray(image.convert("L"))
    if grey.mean() > 127:  # dark lines on paper
        grey = 255 - grey
    _, strokes = cv2.threshold(grey, 127, 255, cv2.THRESH_BINARY)
    return Image.fromarray(np.stack([strokes] * 3, axis=-1), "RGB")


class Annotators:
    """The depth and pose models, loaded on first use and kept."""

    def __init__(self, settings: ControlSettings, device: str) -> None:
        self.settings = settings
        self.device = device
        self._models: dict[str, Any] = {}

    def depth_map(self, image: Image.Image) -> Image.Image:
        estimator = self._model("depth", self._load_depth)
        depth: Image.Image = estimator(image.convert("RGB"))["depth"]
        return depth.convert("RGB").resize(image.size)

    def pose_map(self, image: Image.Image) -> Image.Image:
        """The skeleton of the most prominent person (VitPose on the whole picture), drawn as OpenPose draws it."""
        import torch

        processor, model = self._model("pose", self._load_pose)
        box = [[[0.0, 0.0, float(image.width), float(image.height)]]]
        inputs = processor(image.convert("RGB"), boxes=box, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = model(**inputs)
        people = processor.post_process_pose_estimation(outputs, boxes=box)[0]
        found = [(person["keypoints"].tolist(), person["scores"].tolist()) for person in people]
        return openpose_map(found, image.size)

    def _model(self, kind: str, load: Any) -> Any:
        if kind not in self._models:
            source = self.settings.annotator(kind)
            if source is None:
                raise InvalidRequest("control", f"No {kind} annotator is set up on this generator.")
            self._models[kind] = load(source)
            logger.info("loaded the %s annotator from %s", kind, source)
        return self._models[kind]

    def _load_depth(self, source: str) -> Any:
        from transformers import pipeline

        return pipeline("depth-estimation", model=source, device=self.device, local_files_only=hub_offline())

    def _load_pose(self, source: str) -> Any:
        from transformers import AutoProcessor, VitPoseForPoseEstimation

        processor = AutoProcessor.from_pretrained(source, local_files_only=hub_offline())
        model: Any = VitPoseForPoseEstimation.from_pretrained(source, local_files_only=hub_offline())
        return processor, model.to(self.device)


def _classes(family: Family) -> tuple[Any, Any]:
    """The family's ControlNet model class and pipeline class."""
    import diffusers

    if family is Family.SDXL:
        return diffusers.ControlNetModel, diffusers.StableDiffusionXLControlNetPipeline
    if family is Family.FLUX:
        return diffusers.FluxControlNetModel, diffusers.FluxControlNetPipeline
    return diffusers.ControlNetModel, diffusers.StableDiffusionControlNetPipeline


class ControlNets:
    """ControlNet models and pipelines, built once and kept warm; thread-safe."""

    def __init__(self, settings: ControlSettings, device: str) -> None:
        self.settings = settings
        self.annotators = Annotators(settings, device)
        self._models: dict[tuple[Family, str], Any] = {}
        self._pipelines: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def control_map(self, kind: str, image: Image.Image, width: int, height: int) -> Image.Image:
        """The picture the ControlNet follows, at the render's size."""
        if kind == "canny":
            drawn = canny_map(image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
        elif kind == "scribble":
            drawn = scribble_map(image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
        elif kind == "depth":
            drawn = self.annotators.depth_map(image)
        else:
            drawn = self.annotators.pose_map(image)
        return drawn.resize((width, height), Image.Resampling.LANCZOS)

    def pipeline(self, loaded: LoadedModel, kind: str) -> Any:
        """The model's ControlNet pipeline for `kind` (its weights shared with the model's own pipeline)."""
        key = (loaded.spec.name, kind)
        with self._lock:
            if key not in self._pipelines:
                self._pipelines[key] = self._build(loaded, kind)
            return self._pipelines[key]

    def forget(self, name: str) -> None:
        """Drop the model's ControlNet pipelines (the model was evicted); the ControlNets stay for its family."""
        with self._lock:
            for key in [key for key in self._pipelines if key[0] == name]:
                del self._pipelines[key]

    def _build(self, loaded: LoadedModel, kind: str) -> Any:
        family = loaded.spec.family
        source = self.settings.models.get(family, {}).get(kind)
        if source is None:
            raise InvalidRequest(
                "control", f"There is no {kind} ControlNet for {loaded.spec.name} on this generator."
            )
        model_class, pipeline_class = _classes(family)
        controlnet = self._models.get((family, kind))
        if controlnet is None:
            options: dict[str, Any] = {"torch_dtype": torch_dtype(loaded.dtype)}
            if not Path(source).is_dir() and hub_offline():
                options["local_files_only"] = True
            controlnet = model_class.from_pretrained(source, **options).to(loaded.device)
            self._models[(family, kind)] = controlnet
            logger.info("loaded the %s ControlNet for %s from %s", kind, family.value, source)
        pipeline = pipeline_class.from_pipe(loaded.text2img, controlnet=controlnet)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def close(self) -> None:
        with self._lock:
            self._pipelines.clear()
            self._models.clear()
