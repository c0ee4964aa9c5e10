"""The seam between the job and whatever makes pixels: one Protocol, one file per technology."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from core.models.request import GenerationRequest

# Called from the generating thread with (step, total_steps); must be cheap and thread-safe.
ProgressCallback = Callable[[int, int], None]


@runtime_checkable
class PreviewSink(Protocol):
    """A progress callback that also takes live previews (worker/live_preview.py): the backend asks whether one
    is due at this step and, if so, hands over a small picture decoded from the latents. Both are called from the
    generating thread and must be cheap."""

    def preview_due(self, step: int, total: int) -> bool: ...

    def preview(self, step: int, total: int, image: Image.Image) -> None: ...


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image
    seed: int
    upstream: bytes | None = (
        None  # the file as another service delivered it (OpenAI), with its own credentials
    )


@dataclass(frozen=True)
class Generation:
    images: tuple[GeneratedImage, ...]  # one per request seed, in order
    model: str  # the model that actually rendered (a fallback may differ from the request's)
    backend: str  # "diffusers" or "openai"
    revised_prompt: str | None = None  # OpenAI rewrites prompts; we keep what it used
    note: str | None = None  # shown to users, e.g. "smoke-test model: random weights"
    compute_s: float | None = None  # time in the model call itself, without waiting for the device
    control_image: Image.Image | None = None  # the control map a ControlNet followed (--control), to show
    batched_with: int = 1  # requests that shared the model call (worker/batching.py), this one included


class ImageBackend(Protocol):
    """Renders a request. `source` is the input image for img2img, variation and upscale (already decoded).

    txt2img when source is None; otherwise the source is resized (Lanczos) to request.width × request.height
    and refined at request.strength. `control` is the user's picture for request.control (--control), which
    the backend turns into the control map it follows and returns in `Generation.control_image`.
    The edit modes (worker/edits.py) make request.width × request.height from the source as
    core/commands/canvas.py says; an inpaint's mask rides in the source's alpha channel (255 keep, 0 repaint,
    as in OpenAI's image edits). Raises core.errors.GenerationFailed / BackendUnavailable, and
    TimeLimitExceeded when a render runs past the worker's time limit (it stops at the next step: a job is
    never left holding the device, and is not retried, since the same request would run out of time again).
    """

    name: str

    async def generate(
        self,
        request: GenerationRequest,
        source: Image.Image | None,
        on_progress: ProgressCallback | None = None,
        *,
        control: Image.Image | None = None,
    ) -> Generation: ...

    async def close(self) -> None: ...
