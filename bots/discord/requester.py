"""Who asked and where to answer: a core Requester and the reply_to mapping from a Discord interaction."""

from __future__ import annotations

import discord

from core.request import Platform, Requester


def requester_from(interaction: discord.Interaction) -> Requester:
    channel = interaction.channel
    nsfw = bool(getattr(channel, "nsfw", False))  # text, voice and forum channels; DMs have none
    return Requester(
        platform=Platform.DISCORD,
        user_id=str(interaction.user.id),
        chat_id=str(interaction.channel_id),
        community_id=str(interaction.guild_id) if interaction.guild_id else None,
        display_name=interaction.user.display_name,
        age_restricted=nsfw,
    )


def reply_target(interaction: discord.Interaction, message_id: int | None) -> dict[str, str]:
    """What delivery needs later: the interaction webhook (token and its age), the channel and the user."""
    target = {
        "application_id": str(interaction.application_id),
        "token": interaction.token,
        "created_at": f"{interaction.created_at.timestamp():.3f}",
        "channel_id": str(interaction.channel_id),
        "user_id": str(interaction.user.id),
        "size_limit": str(interaction.filesize_limit),
    }
    if message_id is not None:
        target["message_id"] = str(message_id)
    return target
