"""What users type and read: the /imagine grammar, button ids, the shared wording, upload checks."""

from core.commands.buttons import Button, decode_button
from core.commands.grammar import ImagineOptions, UserDefaults, parse_imagine
from core.commands.messages import error_message, queued_message, result_caption

__all__ = [
    "Button",
    "ImagineOptions",
    "UserDefaults",
    "decode_button",
    "error_message",
    "parse_imagine",
    "queued_message",
    "result_caption",
]
