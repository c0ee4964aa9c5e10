"""What every stored image carries: an invisible watermark in its pixels and signed Content Credentials (C2PA).

`Provenance` is built once at worker start-up from settings. `watermark` marks pixels before encoding (so the
image check, the grid and the previews all see the marked pixels); `sign` embeds a C2PA manifest into encoded
bytes: `c2pa.created` (trainedAlgorithmicMedia) for a new image, `c2pa.opened` + `c2pa.edited` with the parent
as an ingredient for a variation, upscale or img2img, and the upstream file as an ingredient when another service
(OpenAI) delivered an image with credentials of its own, so those are kept rather than re-encoded away.

Signing adds a fresh instance id (and, with a time-stamp authority, a timestamp) to each file, so two renders of
the same request differ in bytes. Storage keys are therefore taken from the unsigned encoding (pixels and
parameters): the same render gets the same key, and the first signed file stored under it is kept.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image

from core.errors import StorageError
from core.settings import ProvenanceSettings
from moderation.provenance import (
    DIGITAL_SOURCE_TYPE,
    MIME_TYPES,
    WATERMARK_BITS,
    WATERMARK_METHOD,
    WATERMARK_SCALES,
    from_bgr,
    to_bgr,
    watermark_fits,
)
from worker.dev_certificate import SigningIdentity, development_identity

log = logging.getLogger(__name__)

EDIT_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


def _version() -> str:
    try:
        return metadata.version("imagebot")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0.0.0"


AGENT = {"name": "imagebot", "version": _version()}


class ProvenanceError(StorageError):
    """Signing failed and the settings say not to publish unsigned images."""

    reason_code = "provenance_failed"


@dataclass(frozen=True)
class Claim:
    """What one image's manifest says about how it was made."""

    model: str
    title: str = "image.png"
    parent: bytes | None = None  # the image it was made from (variation, upscale, img2img input)
    upstream: bytes | None = None  # the file another service delivered, with its own credentials (OpenAI)


class Provenance:
    def __init__(self, settings: ProvenanceSettings, data_dir: Path) -> None:
        self.settings = settings
        self.identity: SigningIdentity | None = _identity(settings, data_dir) if settings.sign else None
        self._lock = threading.Lock()  # one native signer, used from the encoding threads one at a time

    @property
    def trust_anchors_pem(self) -> str | None:
        """The roots to trust when reading our own images: the configured ones, or the development CA."""
        if self.settings.trust_anchors_path is not None:
            return self.settings.trust_anchors_path.read_text()
        if self.identity is not None and self.identity.root_pem is not None:
            return self.identity.root_pem.decode()
        return None

    def watermark(self, image: Image.Image) -> Image.Image:
        """The image with imagebot's invisible mark (unchanged when marks are off or the image is too small)."""
        if not self.settings.watermark or not watermark_fits(image.size):
            return image
        from imwatermark import WatermarkEncoder

        encoder = WatermarkEncoder()
        encoder.set_watermark("bits", list(WATERMARK_BITS))
        marked = encoder.encode(to_bgr(image), WATERMARK_METHOD, scales=list(WATERMARK_SCALES))
        return from_bgr(marked)

    def sign(self, data: bytes, mime: str, claim: Claim) -> bytes:
        """`data` with a signed manifest embedded; per settings, unsigned bytes or ProvenanceError on failure."""
        if self.identity is None:
            return data
        try:
            return self._sign(data, mime, claim)
        except Exception as exc:
            if self.settings.on_failure == "unsigned":
                log.error("signing Content Credentials failed; publishing unsigned: %s", exc)
                return data
            raise ProvenanceError(
                "Sorry — I couldn't sign this image's Content Credentials, so I haven't published it."
            ) from exc

    def _sign(self, data: bytes, mime: str, claim: Claim) -> bytes:
        import c2pa

        assert self.identity is not None
        ingredient = claim.upstream if claim.upstream is not None else claim.parent
        manifest = _manifest(claim, edited=ingredient is not None)
        context = c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
        info = c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256,
            self.identity.chain_pem,
            self.identity.key_pem,
            self.settings.timestamp_url,
        )
        with (
            self._lock,
            c2pa.Signer.from_info(info) as signer,
            c2pa.Builder(manifest, context=context) as builder,
        ):
            if ingredient is not None:
                relation = {"title": "source image", "relationship": "parentOf", "label": "parent"}
                builder.add_ingredient(relation, _mime_of(ingredient), io.BytesIO(ingredient))
            out = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(data), out)
            return out.getvalue()


def _manifest(claim: Claim, *, edited: bool) -> dict[str, Any]:
    parameters = {"model": claim.model}
    if edited:
        actions: list[dict[str, Any]] = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
            {
                "action": "c2pa.edited",
                "digitalSourceType": EDIT_SOURCE_TYPE,
                "softwareAgent": AGENT,
                "parameters": parameters,
            },
        ]
    else:
        actions = [
            {
                "action": "c2pa.created",
                "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": AGENT,
                "parameters": parameters,
            }
        ]
    return {
        "claim_generator_info": [AGENT],
        "title": claim.title,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
    }


def _mime_of(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return MIME_TYPES.get(image.format or "", "image/png")


def _identity(settings: ProvenanceSettings, data_dir: Path) -> SigningIdentity:
    if settings.certificate_pem is not None and settings.key_pem is not None:
        return SigningIdentity(
            settings.certificate_pem.get_secret_value().encode(),
            settings.key_pem.get_secret_value().encode(),
            None,
        )
    if settings.certificate_path is not None and settings.key_path is not None:
        return SigningIdentity(settings.certificate_path.read_bytes(), settings.key_path.read_bytes(), None)
    return development_identity(data_dir / "provenance")
