"""Who asked and where to answer: a core Requester and the reply_to mapping from a Discord interaction.

The privilege is computed here, once per interaction (`requester_of` keeps it on the interaction): OWNER for
the "discord:<id>" entries of settings.owners; in a server ADMIN for Manage Server, Administrator or a role in
privileges.discord_admin_roles, MOD for Manage Messages or a role in privileges.discord_mod_roles, USER
otherwise; in a DM USER (unless an owner). Permissions are the member's server-wide ones, from their roles in
the cached guild (`Member.guild_permissions`): the interaction's own `permissions` include the channel's
overwrites, and Manage Messages in one channel must not make a moderator everywhere. Roles are
matched by id or by name, and the member's role ids and names both go on the Requester (tiers by role).
"""

from __future__ import annotations

import discord

from bots.discord.context import context_of
from core.models.privileges import Privilege, effective_privilege
from core.models.request import Platform, Requester
from core.settings import Settings

_EXTRAS_KEY = "imagebot.requester"


def member_roles(user: discord.User | discord.Member) -> tuple[str, ...]:
    """The member's roles as ids and names (without @everyone); none in a DM."""
    if not isinstance(user, discord.Member):
        return ()
    roles: list[str] = []
    for role in user.roles:
        if role.is_default():
            continue
        roles += [str(role.id), role.name]
    return tuple(roles)


def platform_privilege(
    interaction: discord.Interaction,
    user: discord.User | discord.Member,
    roles: tuple[str, ...],
    settings: Settings,
) -> Privilege:
    """What the server says: server-wide permissions (not this channel's), or a configured role. USER in DMs."""
    if interaction.guild_id is None or not isinstance(user, discord.Member):
        return Privilege.USER
    permissions = user.guild_permissions  # from the roles; none known for an uncached guild
    configured = settings.privileges
    if (
        permissions.administrator
        or permissions.manage_guild
        or any(role in configured.discord_admin_roles for role in roles)
    ):
        return Privilege.ADMIN
    if permissions.manage_messages or any(role in configured.discord_mod_roles for role in roles):
        return Privilege.MOD
    return Privilege.USER


def requester_of(interaction: discord.Interaction) -> Requester:
    """The interaction's Requester, privilege included: computed on first use and kept on the interaction."""
    cached = interaction.extras.get(_EXTRAS_KEY)
    if isinstance(cached, Requester):
        return cached
    requester = requester_from(interaction, context_of(interaction).settings)
    interaction.extras[_EXTRAS_KEY] = requester
    return requester


def requester_from(
    interaction: discord.Interaction, settings: Settings, user: discord.User | discord.Member | None = None
) -> Requester:
    """Who interacted, or `user` (a member picked in a command's option) as seen where they interacted."""
    user = user or interaction.user
    channel = interaction.channel
    nsfw = bool(getattr(channel, "nsfw", False))  # text, voice and forum channels; DMs have none
    roles = member_roles(user)
    user_id = str(user.id)
    level = effective_privilege(
        Platform.DISCORD, user_id, platform_privilege(interaction, user, roles, settings), settings.owners
    )
    return Requester(
        platform=Platform.DISCORD,
        user_id=user_id,
        chat_id=str(interaction.channel_id),
        community_id=str(interaction.guild_id) if interaction.guild_id else None,
        display_name=user.display_name,
        age_restricted=nsfw,
        privilege=level,
        roles=roles,
    )


def reply_target(
    interaction: discord.Interaction, message_id: int | None, *, ephemeral: bool = False
) -> dict[str, str]:
    """What delivery needs later: the interaction (its id, to look up its token while it lives, and its age),
    the channel and the user, and whether the reply is private (then a result that outlives the token goes to
    the user's DMs). Never the token itself: this is stored with the request for days (location.py)."""
    target = {
        "application_id": str(interaction.application_id),
        "interaction_id": str(interaction.id),
        "created_at": f"{interaction.created_at.timestamp():.3f}",
        "channel_id": str(interaction.channel_id),
        "user_id": str(interaction.user.id),
        "size_limit": str(interaction.filesize_limit),
    }
    if message_id is not None:
        target["message_id"] = str(message_id)
    if ephemeral:
        target["ephemeral"] = "1"
    return target
