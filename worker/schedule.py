"""How a diffusers call is scheduled: the steps an image-to-image call is asked for, the steps that then run,
and the seeds a generator takes. Shared by the text/image-to-image path and the edit modes."""

from __future__ import annotations

MAX_SEED = 2**64 - 1  # torch generators take any unsigned 64-bit seed


def img2img_steps(steps: int, strength: float) -> int:
    """The steps to ask an img2img pipeline for so that at least one denoising step runs.

    diffusers' img2img runs only int(steps * strength) of the steps it is given (it skips the noisiest ones),
    and fails when that is 0, e.g. 2 steps at strength 0.3. A subtle variation or an upscale at low strength is
    a fair request, so the schedule is stretched until it holds one step rather than refusing the request.
    """
    effective = steps
    while int(effective * strength) < 1:
        effective += 1
    return effective


def steps_run(steps: int, strength: float) -> int:
    """The denoising steps one img2img (or inpaint) call runs at `strength` when asked for `steps`."""
    stretched = img2img_steps(steps, strength)
    return min(int(stretched * strength), stretched)
