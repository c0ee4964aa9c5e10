"""What an admin command answers: text whose users stay values (platform, id, name), never bare ids in a string.

`AdminReply.parts` is a sequence of text and `UserRef`s; each front end renders a UserRef its own way with one
function given to `render` (Discord: a `<@id>` mention sent with mentions disabled; Telegram: the name), and
`text` is the plain rendering (the display name when known, else the id) for logs, the CLI and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.models.request import Requester


@dataclass(frozen=True)
class UserRef:
    """A user named in a reply or the audit log."""

    platform: str
    user_id: str
    display_name: str | None = None

    @classmethod
    def of(cls, requester: Requester) -> UserRef:
        return cls(requester.platform.value, requester.user_id, requester.display_name or None)

    @classmethod
    def parse(cls, owner: str, display_name: str | None = None) -> UserRef:
        """From an owner id "platform:user_id"."""
        platform, _, user_id = owner.partition(":")
        return cls(platform, user_id, display_name or None)

    @property
    def owner(self) -> str:
        return f"{self.platform}:{self.user_id}"

    def plain(self) -> str:
        return self.display_name or self.user_id


Part = str | UserRef


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class AdminReply:
    parts: tuple[Part, ...]
    # Messages the front end should delete (from DeliveryLog), for `delete`.
    delete_messages: tuple[dict[str, str], ...] = field(default=())

    @classmethod
    def of(cls, *parts: Part, delete_messages: tuple[dict[str, str], ...] = ()) -> AdminReply:
        return cls(tuple(part for part in parts if part != ""), delete_messages)

    @classmethod
    def lines(cls, lines: Iterable[Iterable[Part]]) -> AdminReply:
        """One reply of several lines, each a sequence of parts."""
        parts: list[Part] = []
        for number, line in enumerate(lines):
            parts += (["\n"] if number else []) + list(line)
        return cls.of(*parts)

    @property
    def users(self) -> tuple[UserRef, ...]:
        return tuple(part for part in self.parts if isinstance(part, UserRef))

    @property
    def text(self) -> str:
        return self.render(UserRef.plain)

    def render(self, mention: Callable[[UserRef], str], escape: Callable[[str], str] = _same) -> str:
        """The reply with each user shown by `mention` and the rest of the text passed through `escape`
        (e.g. html.escape for a front end that sends HTML)."""
        return "".join(escape(part) if isinstance(part, str) else mention(part) for part in self.parts)
