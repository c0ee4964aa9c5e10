"""The one entry point every front end calls (`ImagineService`), built in layers: see `facade`."""

from core.commands.derivation import UPSCALE_STRENGTH
from core.commands.dialogs import Answer, Ask, Picker
from core.service.base import SourceFetcher
from core.service.facade import ImagineService, Pressed

__all__ = ["UPSCALE_STRENGTH", "Answer", "Ask", "ImagineService", "Picker", "Pressed", "SourceFetcher"]
