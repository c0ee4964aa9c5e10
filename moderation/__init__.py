"""Prompt and image checks that return typed verdicts (core.verdict); a failed check is never "clean"."""
