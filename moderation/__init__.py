"""Prompt and image checks that return typed verdicts (core.models.verdict); a failed check is never "clean"."""
