"""`with_settings`: the test's settings with a few fields changed, checked as start-up checks them.

    tuned = with_settings(settings, worker={"max_jobs": 1}, quotas=QuotaSettings(default_tier="unlimited"))

Tests change settings only through it, never with `model_copy(update=…)`, which checks nothing: a misspelt or
stale name is taken as an attribute nobody reads, and the test silently runs with the value it meant to change
(one set `lend_idle_cores` long after that setting had become `cpu_turns`). Here an unknown name or a bad value
raises pydantic's ValidationError, naming it.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings, updated


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """`settings` with `changes`: a group given as a dict changes only the fields it names (nested groups
    likewise); anything else replaces the field's value whole."""
    return updated(settings, changes)
