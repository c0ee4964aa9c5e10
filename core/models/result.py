"""What a worker reports back: result events, carried on a Redis stream per platform.

Every job ends in exactly one terminal event (DONE, FAILED, REFUSED or CANCELLED) with a reason the bot can
show; STARTED and PROGRESS are advisory and may be dropped or coalesced by a front end.
"""

from __future__ import annotations

import base64
import time
from enum import StrEnum

from pydantic import Field

from core.models.request import Frozen, Requester

LIVE_PREVIEW_MAX_CHARS = 64_000  # a live preview's data: URL; the worker publishes none larger
LIVE_PREVIEW_PREFIX = "data:image/jpeg;base64,"


class EventKind(StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    DONE = "done"
    FAILED = "failed"  # our side failed: show an apology with the request id
    REFUSED = "refused"  # moderation refused the output or input: show the reason
    CANCELLED = "cancelled"
    DESCRIBED = "described"  # a /describe finished: `suggestions` holds the prompts it suggests
    NOTICE = (
        "notice"  # not a job's result: a message for moderators, posted to reply_to's chat (a log channel)
    )

    @property
    def terminal(self) -> bool:
        return self not in (EventKind.STARTED, EventKind.PROGRESS)


class StoredImage(Frozen):
    key: str  # content-addressed storage key
    url: str  # public (CDN), presigned or local URL
    width: int
    height: int
    content_type: str = "image/png"
    size_bytes: int = 0
    seed: int | None = None
    index: int | None = None  # position in the grid, 0-based; None for the grid and previews
    spoiler: bool = False  # flagged by the image check but allowed by policy: show behind a spoiler


class ResultEvent(Frozen):
    kind: EventKind
    request_id: str
    requester: Requester
    reply_to: dict[str, str] = Field(default_factory=dict)
    model: str = ""
    backend: str = ""  # "diffusers", "openai", "cache"
    images: tuple[StoredImage, ...] = ()  # full-size images, in grid order
    grid: StoredImage | None = None  # 2×2 (or 1×2…) PNG grid of all images
    preview: StoredImage | None = None  # JPEG/WebP small enough for chat upload limits
    control: StoredImage | None = (
        None  # the control map a ControlNet followed (--control), shown with the result
    )
    cached: bool = False
    fallback: bool = False  # served by OpenAI because no local worker could
    revised_prompt: str | None = None
    suggestions: tuple[str, ...] = ()  # DESCRIBED: the prompts suggested for the image, each with a button
    reason_code: str | None = None  # errors.*.reason_code or a moderation code
    message: str | None = None  # user-facing text for FAILED/REFUSED/CANCELLED
    step: int | None = None
    total_steps: int | None = None
    # PROGRESS only: a small image-checked JPEG of the image as it forms, as a data: URL (bounded size)
    live_preview: str | None = Field(default=None, max_length=LIVE_PREVIEW_MAX_CHARS)
    duration_s: float | None = None
    # Where the job's time went, in seconds: queued (submit → start), source (load input image), model,
    # store (check, encode, upload). For operators and bench/pipeline.py.
    timings: dict[str, float] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)

    @property
    def terminal(self) -> bool:
        return self.kind.terminal

    def live_preview_jpeg(self) -> bytes | None:
        """The live preview's JPEG bytes (for a front end that uploads it), or None without a valid one."""
        if self.live_preview is None or not self.live_preview.startswith(LIVE_PREVIEW_PREFIX):
            return None
        try:
            return base64.b64decode(self.live_preview.removeprefix(LIVE_PREVIEW_PREFIX), validate=True)
        except ValueError:
            return None

    @property
    def shown_indices(self) -> list[int]:
        """The grid positions of the images delivered (a withheld image leaves a gap), for their buttons."""
        return [image.index if image.index is not None else i for i, image in enumerate(self.images)]
