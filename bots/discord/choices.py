"""Option choices and autocompletion shared by the commands: aspect ratios and the model catalog."""

from __future__ import annotations

import discord
from discord import app_commands

from core.governance.preferences import ASPECTS
from core.models.catalog import CATALOG

AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 choices
ASPECT_CHOICES = [app_commands.Choice(name=aspect, value=aspect) for aspect in ASPECTS]


async def model_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    typed = current.strip().lower()
    choices = [
        app_commands.Choice(name=f"{spec.name} — {spec.description}"[:100], value=spec.name)
        for spec in CATALOG
        if typed in spec.name or any(typed in alias for alias in spec.aliases)
    ]
    return choices[:AUTOCOMPLETE_LIMIT]
