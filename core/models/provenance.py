"""The provenance seam: what an image file says it is, in plain words (its C2PA manifest and the invisible mark).

core reads no manifests itself: moderation/provenance.py implements `ProvenanceReader` and cli/ hands it to the
service, as it does the moderators. /info (on a stored result) and /admin check (on an image someone posted)
both go through it.
"""

from __future__ import annotations

from typing import Protocol


class ProvenanceReader(Protocol):
    async def describe(self, data: bytes) -> str:
        """The file's Content Credentials (signed by whom; valid, tampered or absent) and whether imagebot's
        invisible watermark is in it, as a few plain sentences. Never blocks the event loop."""
        ...


class NoProvenanceReader:
    """Where no reader is wired (a bare test service): says so instead of guessing."""

    async def describe(self, data: bytes) -> str:
        return "Provenance can't be read on this bot (no reader is configured)."
