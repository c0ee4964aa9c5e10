"""Option choices and autocompletion shared by the commands: aspect ratios, the model catalog, the operator's LoRAs,
samplers and ControlNet kinds."""

from __future__ import annotations

import discord
from discord import app_commands

from bots.discord.context import context_of
from core.governance.preferences import ASPECTS
from core.models.catalog import CATALOG
from core.models.sampler import SAMPLERS
from core.settings import CONTROL_KINDS

AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 choices
ASPECT_CHOICES = [app_commands.Choice(name=aspect, value=aspect) for aspect in ASPECTS]
SAMPLER_CHOICES = [app_commands.Choice(name=shown, value=name) for name, shown in SAMPLERS.items()]
CONTROL_CHOICES = [app_commands.Choice(name=kind, value=kind) for kind in CONTROL_KINDS]


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


async def lora_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The operator's LoRAs (name — family, trigger word), matching what was typed so far."""
    typed = current.strip().lower()
    loras = context_of(interaction).settings.adapters.loras
    choices = []
    for name in sorted(loras):
        lora = loras[name]
        if typed and typed not in name:
            continue
        about = f"{name} — for {lora.family.value}" + (f", adds “{lora.trigger}”" if lora.trigger else "")
        choices.append(app_commands.Choice(name=about[:100], value=name))
    return choices[:AUTOCOMPLETE_LIMIT]
