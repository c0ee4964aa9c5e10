"""OpenAI's moderation endpoint as a PromptModerator.

Only the prompt is sent: the negative prompt lists what the picture must avoid, so words such as "gore"
or "nude" there are normal and must not refuse a request. OpenAI has no per-community policy, so
community_id plays no part here. The call is short (a few seconds, at most one retry) because a user is
waiting; when it fails the verdict is CHECK_FAILED, never ALLOWED, and the caller's policy decides.
"""

from __future__ import annotations

import logging

import openai

from core.errors import ConfigError
from core.models.verdict import Outcome, Verdict
from core.settings import OpenAISettings

log = logging.getLogger(__name__)

REASON_FLAGGED = "openai_moderation"
REASON_UNAVAILABLE = "moderation_unavailable"
MAX_TIMEOUT_S = 5.0
MAX_RETRIES = 1

_UNAVAILABLE_MESSAGE = (
    "We couldn't check your prompt just now, so it was not sent. Please try again in a minute."
)


class OpenAIPromptCheck:
    """Refuses prompts that OpenAI's moderation model flags; reports its own failures as CHECK_FAILED."""

    def __init__(self, settings: OpenAISettings) -> None:
        if settings.api_key is None or not settings.enabled:
            raise ConfigError("The OpenAI moderation check needs an API key: set OPENAI_API_KEY.")
        self._model = settings.moderation_model
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key.get_secret_value(),
            base_url=settings.base_url,
            timeout=min(settings.timeout_s, MAX_TIMEOUT_S),
            max_retries=min(settings.max_retries, MAX_RETRIES),
        )

    async def check_prompt(self, prompt: str, negative_prompt: str, community_id: str | None) -> Verdict:
        try:
            response = await self._client.moderations.create(model=self._model, input=prompt)
            result = response.results[0]
            hits: dict[str, bool] = result.categories.model_dump(by_alias=True)
            scores = {
                name: float(score)
                for name, score in result.category_scores.model_dump(by_alias=True).items()
                if score is not None
            }
            flagged = bool(result.flagged)
        except openai.OpenAIError as exc:
            log.warning(
                "openai moderation failed: %s (status %s)",
                type(exc).__name__,
                getattr(exc, "status_code", None),
            )
            return _unavailable(prompt)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            log.exception("openai moderation answered in an unexpected shape")
            return _unavailable(prompt)

        if not flagged:
            return Verdict(Outcome.ALLOWED, normalized=prompt, scores=scores)
        categories = tuple(name for name, hit in hits.items() if hit)
        log.info("openai moderation flagged a prompt: %s", ", ".join(categories) or "no category")
        named = ", ".join(categories) if categories else "content OpenAI does not allow"
        return Verdict(
            Outcome.REFUSED,
            categories=categories,
            reason_code=REASON_FLAGGED,
            message=f"Your prompt was flagged ({named}). Please rephrase it and try again.",
            normalized=prompt,
            scores=scores,
        )

    async def close(self) -> None:
        await self._client.close()


def _unavailable(prompt: str) -> Verdict:
    return Verdict(
        Outcome.CHECK_FAILED, reason_code=REASON_UNAVAILABLE, message=_UNAVAILABLE_MESSAGE, normalized=prompt
    )
