"""--sampler names → diffusers schedulers, built from the model's own scheduler config, for one request only.

`sampler_for` swaps the pipeline's scheduler for the request's and puts the model's own back afterwards, even
when the render fails, so a sampler never leaks into the next request. The scheduler is built with
`from_config(pipeline.scheduler.config, …)`: the model's training betas, prediction type and timestep spacing
stay, only the sampling algorithm changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.errors import InvalidRequest
from core.models.sampler import SAMPLERS, sampler_names

logger = logging.getLogger(__name__)

# canonical name → (diffusers scheduler class name, options over the model's config)
_SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++ 2m": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    "dpm++ 2m karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
assert set(_SCHEDULERS) == set(SAMPLERS), "every sampler name in core needs a scheduler here"


def build_scheduler(name: str, config: Any) -> Any:
    """A new scheduler for sampler `name` from a model's scheduler config."""
    import diffusers

    entry = _SCHEDULERS.get(name)
    if entry is None:
        raise InvalidRequest("sampler", f"The sampler must be one of: {sampler_names()} (not “{name}”).")
    class_name, options = entry
    scheduler_class = getattr(diffusers, class_name)
    return scheduler_class.from_config(config, **options)


@contextmanager
def sampler_for(pipeline: Any, name: str | None) -> Iterator[None]:
    """Render with sampler `name` inside the block (the model's own when None), then restore the model's own."""
    if name is None:
        yield
        return
    own = pipeline.scheduler
    pipeline.scheduler = build_scheduler(name, own.config)
    try:
        yield
    finally:
        pipeline.scheduler = own
