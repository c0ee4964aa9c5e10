"""Vary (Region): repaint the part of a finished image a user painted over, keeping the rest.

The mask comes from the front end as a picture the size of the image (white = repaint, black = keep; the web's
region editor paints it on a canvas). It is checked like any upload before it is decoded, then read once to make
sure it is the image's size and that something is painted, and normalised to a black-and-white PNG. The request is
an INPAINT child of the grid, asked for like any other (the service checks who may, the prompt, the quota).
"""

from __future__ import annotations

import io

from PIL import Image

from core.commands.derivation import Derivation, child_request, random_seeds
from core.commands.uploads import Upload, read_upload
from core.errors import InvalidRequest
from core.models.policy import NsfwPolicy
from core.models.request import GenerationRequest, Mode, Requester
from core.models.result import StoredImage

INPAINT_STRENGTH = 1.0  # the painted region is drawn anew; what is outside it is kept exactly by the worker
MASK_THRESHOLD = 128


def read_mask(data: bytes, image: StoredImage, max_pixels: int) -> Upload:
    """The mask as a black-and-white PNG upload; InvalidRequest("mask", …) says what to change.

    It decodes the picture: call it from a thread."""
    upload = read_upload(data, max_pixels)
    if (upload.width, upload.height) != (image.width, image.height):
        raise InvalidRequest(
            "mask",
            f"The mask is {upload.width}×{upload.height} but the image is {image.width}×{image.height}; "
            "paint it over the image itself.",
        )
    with Image.open(io.BytesIO(upload.data)) as source:
        gray = source.convert("RGBA")
        alpha = gray.getchannel("A")
        luminance = gray.convert("L")
    painted = Image.eval(luminance, lambda v: 255 if v >= MASK_THRESHOLD else 0)
    painted.paste(0, mask=Image.eval(alpha, lambda a: 255 if a < MASK_THRESHOLD else 0))
    if painted.getbbox() is None:
        raise InvalidRequest("mask", "Nothing is painted; paint over the part of the image to change.")
    out = io.BytesIO()
    painted.save(out, format="PNG", optimize=True)
    return Upload(out.getvalue(), "image/png", image.width, image.height)


def region_request(
    parent: GenerationRequest,
    image: StoredImage,
    index: int,
    mask: Upload,
    prompt: str,
    requester: Requester,
    request_id: str,
    reply_to: dict[str, str],
    image_policy: NsfwPolicy | None,
) -> GenerationRequest:
    """An INPAINT of image `index` of `parent` under `mask`, with `prompt` for the region (the parent's when
    blank), at the image's own size and model."""
    derivation = Derivation(
        Mode.VARIATION,  # made an INPAINT below, with its mask (a request validates the pair together)
        index,
        image.key,
        INPAINT_STRENGTH,
        random_seeds(parent.n),
        image.width,
        image.height,
        parent.model,
    )
    child = child_request(parent, requester, request_id, reply_to, derivation, image_policy)
    return GenerationRequest.model_validate(
        {
            **child.model_dump(),
            "mode": Mode.INPAINT,
            "mask_image": mask.key,
            "prompt": prompt.strip() or parent.prompt,
        }
    )
