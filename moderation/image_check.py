"""The image check (NudeNet's detector) and the policy that turns its verdict into an action.

`NudeNetImageCheck` runs the ONNX detector that ships inside the nudenet 3.4 wheel (no download). The model
loads once, lazily and under a lock, on first use or in `warm_up()`; each check runs in a thread. An image is
refused (category "nsfw") when any exposed-body class scores at least `threshold`; covered, face, belly, feet
and armpit classes never refuse. A crash of the decoder or the detector is CHECK_FAILED, never "clean".

`ImagePolicy.decide` maps a verdict to what the worker does with the image:

    verdict          policy "refuse"   policy "spoiler"              policy "allow"
    ALLOWED          DELIVER           DELIVER                       DELIVER
    REFUSED nsfw     QUARANTINE        SPOILER if age-restricted     DELIVER if age-restricted
                                       else QUARANTINE               else QUARANTINE
    REFUSED other    QUARANTINE        QUARANTINE                    QUARANTINE
    CHECK_FAILED     QUARANTINE when fail_closed, else DELIVER

Nudity never reaches a channel that is not age-restricted, whatever the policy.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
from PIL import Image

from core.errors import ConfigError
from core.models.policy import NsfwPolicy
from core.models.verdict import Outcome, Verdict
from core.settings import ModerationSettings

log = logging.getLogger(__name__)

NSFW_CATEGORY: Final = "nsfw"
REASON_NSFW: Final = "nsfw_image"
REASON_FAILED: Final = "image_check_failed"
EXPOSED_CLASSES: Final = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)
REFUSED_MESSAGE: Final = (
    "Sorry, this image was held back because it may contain nudity. Please try a different prompt or seed."
)
FAILED_MESSAGE: Final = "Sorry, the image safety check failed, so this image was held back. Please try again."


class Detector(Protocol):
    """What we use of nudenet.NudeDetector: detections as {"class": str, "score": float, "box": [...]}."""

    def detect(self, image_path: Any) -> list[dict[str, Any]]: ...


def _load_nudenet(threads: int | None = None) -> Detector:
    """NudeNet's detector; with `threads`, its onnxruntime session is rebuilt with that many intra-op threads
    and no busy-waiting (it runs beside a model on a worker: by default it takes every core and spins)."""
    import nudenet
    import onnxruntime
    from nudenet import NudeDetector  # imported here: nudenet (onnxruntime, opencv) is an optional extra

    detector = NudeDetector()
    if threads is not None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        path = Path(nudenet.__file__).parent / "320n.onnx"  # the model NudeDetector() loads
        detector.onnx_session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    loaded: Detector = detector
    return loaded


def _decode_bgr(image: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """PNG/JPEG/WebP bytes as an H×W×3 BGR array: the layout nudenet gets from cv2.imread."""
    with Image.open(io.BytesIO(image)) as opened:
        rgb = np.asarray(opened.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


class NudeNetImageCheck:
    """core.models.verdict.ImageModerator backed by NudeNet's bundled detector (or any `Detector`, for tests)."""

    def __init__(
        self,
        threshold: float = 0.5,
        detector: Detector | None = None,
        *,
        threads: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        """`threads`: onnxruntime intra-op threads (None: its default, every core); `executor`: where checks run
        (None: asyncio's default executor). A worker gives both, so checks stay off the model's cores."""
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"NSFW threshold must lie between 0 and 1, not {threshold}")
        self._threshold = threshold
        self._detector = detector
        self._threads = threads
        self._executor = executor
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the detector now (a worker's start-up) instead of on the first image."""
        self._get_detector()

    def _get_detector(self) -> Detector:
        detector = self._detector
        if detector is None:
            with self._lock:
                if self._detector is None:
                    threads = self._threads
                    self._detector = _load_nudenet() if threads is None else _load_nudenet(threads)
                    log.info("nudenet detector loaded")
                detector = self._detector
        return detector

    async def check_image(self, image: bytes) -> Verdict:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._check, image)
        except Exception as exc:
            log.exception("image check failed: %s", type(exc).__name__)
            return Verdict(Outcome.CHECK_FAILED, reason_code=REASON_FAILED, message=FAILED_MESSAGE)

    def _check(self, image: bytes) -> Verdict:
        detections = self._get_detector().detect(_decode_bgr(image))
        scores: dict[str, float] = {}
        for detection in detections:
            name = str(detection["class"])
            if name in EXPOSED_CLASSES:
                scores[name] = max(scores.get(name, 0.0), float(detection["score"]))
        if any(score >= self._threshold for score in scores.values()):
            log.info("image refused: %s", ", ".join(f"{k}={v:.2f}" for k, v in sorted(scores.items())))
            return Verdict(
                Outcome.REFUSED,
                categories=(NSFW_CATEGORY,),
                reason_code=REASON_NSFW,
                message=REFUSED_MESSAGE,
                scores=scores,
            )
        return Verdict(Outcome.ALLOWED, scores=scores)


class ImageAction(StrEnum):
    DELIVER = "deliver"
    SPOILER = "spoiler"  # delivered behind a spoiler / blur
    QUARANTINE = "quarantine"  # not delivered; kept privately for moderators when quarantine is on


@dataclass(frozen=True)
class ImagePolicy:
    policy: NsfwPolicy = NsfwPolicy.REFUSE
    fail_closed: bool = True

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> ImagePolicy:
        return cls(policy=settings.nsfw_policy, fail_closed=settings.fail_closed)

    def decide(self, verdict: Verdict, age_restricted: bool) -> ImageAction:
        if verdict.outcome is Outcome.ALLOWED:
            return ImageAction.DELIVER
        if verdict.outcome is Outcome.CHECK_FAILED:
            return ImageAction.QUARANTINE if self.fail_closed else ImageAction.DELIVER
        only_nsfw = bool(verdict.categories) and set(verdict.categories) <= {NSFW_CATEGORY}
        if not only_nsfw or not age_restricted or self.policy is NsfwPolicy.REFUSE:
            return ImageAction.QUARANTINE
        return ImageAction.SPOILER if self.policy is NsfwPolicy.SPOILER else ImageAction.DELIVER
