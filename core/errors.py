"""The one exception tree of imagebot.

    ImagebotError
    ├── UserError                 the user can fix it; its message is shown as is
    │   ├── InvalidRequest        a flag, option or value is wrong (.field names it)
    │   ├── PromptRejected        moderation refused the prompt (.categories, .reason_code)
    │   ├── QuotaExceeded         a limit is used up (.retry_after seconds until it resets)
    │   ├── NotAllowed            the user may not do this (someone else's job, a banned user)
    │   ├── NotFound              an unknown or expired request id
    │   └── TimeLimitExceeded     a render ran past its time limit and was stopped (.limit_s); not retried
    └── SystemFailure             our side failed; users see an apology with the request id
        ├── ConfigError           bad settings, raised at start-up naming the variable
        ├── BackendUnavailable    no generator can serve the request
        ├── GenerationFailed      a backend raised while generating
        ├── ModerationUnavailable the moderation check itself failed
        └── StorageError          the image could not be stored or read

Adapters turn these into messages in one place; anything else is unexpected.
"""

from __future__ import annotations

from collections.abc import Sequence


class ImagebotError(Exception):
    """Base of every error imagebot raises on purpose."""

    reason_code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(ImagebotError):
    """Something the user can change; the message is written for them."""

    reason_code = "user_error"


class InvalidRequest(UserError):
    reason_code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class PromptRejected(UserError):
    reason_code = "prompt_rejected"

    def __init__(self, message: str, categories: Sequence[str] = (), code: str = "blocked") -> None:
        super().__init__(message)
        self.categories = tuple(categories)
        self.code = code


class QuotaExceeded(UserError):
    reason_code = "quota_exceeded"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotAllowed(UserError):
    reason_code = "not_allowed"


class NotFound(UserError):
    reason_code = "not_found"


class TimeLimitExceeded(UserError):
    """The render was stopped at its time limit: the same request would run out of time again, so it is not
    retried; the user can ask for less work (fewer images or steps, a smaller size)."""

    reason_code = "time_limit"

    def __init__(self, message: str, limit_s: float) -> None:
        super().__init__(message)
        self.limit_s = limit_s


class SystemFailure(ImagebotError):
    """Our side failed; the user sees an apology with the request id, the log has the details."""

    reason_code = "system_failure"


class ConfigError(SystemFailure):
    reason_code = "config_error"


class BackendUnavailable(SystemFailure):
    reason_code = "backend_unavailable"


class GenerationFailed(SystemFailure):
    reason_code = "generation_failed"


class ModerationUnavailable(SystemFailure):
    reason_code = "moderation_unavailable"


class StorageError(SystemFailure):
    reason_code = "storage_error"
