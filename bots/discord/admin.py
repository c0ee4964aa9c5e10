"""The /admin command group: typed options become core's admin grammar (core.governance.admin), run by AdminService.

`default_permissions=manage_messages` only hides the group from members without that permission (server admins
can change who sees it in Server Settings → Integrations); the privilege check that counts is core's, on the
privilege computed for every interaction (requester.py). The group is usable in DMs too, where only an
owner can do anything useful (ban everywhere, read the whole audit log); community-wide subcommands answer
there that they work in a server.

Every reply is ephemeral. Errors reach the tree's on_error (send_error), the one place they become messages.
`delete` also removes the messages the result was posted in (core's DeliveryLog, see location.py).
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bots.discord.choices import AUTOCOMPLETE_LIMIT, lora_autocomplete, model_autocomplete
from bots.discord.context import context_of
from bots.discord.location import remove
from bots.discord.replies import NO_MENTIONS
from bots.discord.requester import requester_from, requester_of
from core.commands.uploads import UPLOAD_MAX_BYTES
from core.errors import InvalidRequest
from core.governance.admin import TargetLookup, UserRef, parse_duration
from core.models.audit import AuditAction
from core.models.request import Platform, Requester
from core.settings import Settings

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
REQUEST_ID_CHARS = 40  # core ids are 16; anything much longer is a mistake
AUDIT_ACTIONS = tuple(action.value for action in AuditAction)


async def run(interaction: discord.Interaction, words: list[str]) -> None:
    """Run one admin command (as grammar words) for the member who typed it, and answer ephemerally."""
    context = context_of(interaction)
    actor = requester_of(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    log.info("admin command %s by %s in %s", words[0], actor.user_id, actor.community_id or "a DM")
    reply = await context.admin.execute(" ".join(words), actor, picked_user(interaction))
    text = reply.render(mention)
    if reply.delete_messages:
        removed = 0
        for where in reply.delete_messages:
            removed += await remove(interaction.client, context, where)
        total = len(reply.delete_messages)
        text += f" Removed {removed} of {total} message(s) showing it."
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)


def mention(user: UserRef) -> str:
    """A user named in an admin reply: a mention, which shows their name and, sent with mentions off, pings nobody."""
    return f"<@{user.user_id}>" if user.platform == Platform.DISCORD else user.plain()


def picked_user(interaction: discord.Interaction) -> TargetLookup:
    """Core's lookup of the user a command names: the member picked in the `user` option, with their roles and
    privilege here (core refuses to act on someone of equal or higher rank)."""
    picked = getattr(interaction.namespace, "user", None)

    async def lookup(user_id: str) -> Requester | None:
        if isinstance(picked, discord.User | discord.Member) and str(picked.id) == user_id:
            return requester_from(interaction, context_of(interaction).settings, picked)
        return None

    return lookup


def one_word(value: str, option: str) -> str:
    """A value that must stay one word of the grammar (an id, an action name)."""
    value = value.strip()
    if not value or len(value.split()) != 1:
        raise InvalidRequest(
            option, f"The {option} option takes one word without spaces; you gave “{value}”."
        )
    return value


def request_id(value: str) -> str:
    value = one_word(value, "request")
    if len(value) > REQUEST_ID_CHARS:
        raise InvalidRequest("request", "That isn't a request id; they look like “abcdefghijklmnop”.")
    return value


def duration_word(value: str, option: str) -> str:
    """A duration word (30m, 2h, 7d, 1w), checked here so a stray space can't change the command."""
    word = one_word(value, option).lower()
    parse_duration(word)
    return word


def ban_reason(reason: str) -> str:
    """The reason as the last words of `ban`; one starting with "for" is quoted (else it reads as a duration)."""
    reason = " ".join(reason.split())
    return f"“{reason}”" if reason.lower().split()[:1] == ["for"] else reason


def build_admin_group(settings: Settings) -> app_commands.Group:
    """The /admin group, with the tiers of these settings as choices."""
    admin = app_commands.Group(
        name="admin",
        description="Moderate the image bot here",
        default_permissions=discord.Permissions(manage_messages=True),
    )
    tiers = [app_commands.Choice(name=tier, value=tier) for tier in settings.quotas.tiers]
    tier_choices = [*tiers[: AUTOCOMPLETE_LIMIT - 1], app_commands.Choice(name="default", value="default")]

    @admin.command(name="ban", description="Stop a user from making images here")
    @app_commands.describe(
        user="Who to ban", duration="How long, e.g. 30m, 2h, 7d, 1w (default: until unbanned)", reason="Why"
    )
    async def ban(
        interaction: discord.Interaction,
        user: discord.User,
        duration: str | None = None,
        reason: str | None = None,
    ) -> None:
        words = ["ban", str(user.id)]
        if duration:
            words += ["for", duration_word(duration, "duration")]
        if reason and reason.strip():
            words.append(ban_reason(reason))
        await run(interaction, words)

    @admin.command(name="unban", description="Let a banned user make images again")
    @app_commands.describe(user="Who to unban")
    async def unban(interaction: discord.Interaction, user: discord.User) -> None:
        await run(interaction, ["unban", str(user.id)])

    @admin.command(name="tier", description="Put a user on a quota tier")
    @app_commands.describe(user="Whose tier", tier="The tier; default: from their roles or the bot's default")
    @app_commands.choices(tier=tier_choices)
    async def tier(interaction: discord.Interaction, user: discord.User, tier: str) -> None:
        await run(interaction, ["tier", str(user.id), one_word(tier, "tier")])

    @admin.command(name="quota", description="Set how many images a day a user may make")
    @app_commands.describe(
        user="Whose quota", images="Images per day; leave empty to go back to their tier's"
    )
    async def quota(
        interaction: discord.Interaction,
        user: discord.User,
        images: app_commands.Range[int, 0, 1_000_000] | None = None,
    ) -> None:
        await run(interaction, ["quota", str(user.id), "default" if images is None else str(images)])

    @admin.command(name="usage", description="A user's usage, limits and recent requests")
    @app_commands.describe(user="Whose usage")
    async def usage(interaction: discord.Interaction, user: discord.User) -> None:
        await run(interaction, ["usage", str(user.id)])

    @admin.command(name="queue", description="Jobs waiting, workers alive and how long the queue takes")
    async def queue(interaction: discord.Interaction) -> None:
        await run(interaction, ["queue"])

    @admin.command(name="cancel", description="Cancel anyone's waiting request")
    @app_commands.describe(request="The request id (its images' file names start with it)")
    async def cancel(interaction: discord.Interaction, request: str) -> None:
        await run(interaction, ["cancel", request_id(request)])

    @admin.command(name="pause", description="Pause image generation in this server")
    @app_commands.describe(reason="Why (kept in the audit log)")
    async def pause(interaction: discord.Interaction, reason: str | None = None) -> None:
        await run(interaction, ["pause", *(reason.split() if reason else [])])

    @admin.command(name="resume", description="Turn image generation back on in this server")
    async def resume(interaction: discord.Interaction) -> None:
        await run(interaction, ["resume"])

    @admin.command(name="delete", description="Delete a result's images from storage and its messages")
    @app_commands.describe(request="The request id", image="Only this image (1–4); default: all of them")
    async def delete(
        interaction: discord.Interaction, request: str, image: app_commands.Range[int, 1, 4] | None = None
    ) -> None:
        await run(interaction, ["delete", request_id(request), *([str(image)] if image else [])])

    @admin.command(name="audit", description="Recent admin actions and refusals here")
    @app_commands.describe(
        user="Only entries by or about this user",
        action="Only this action, e.g. ban or prompt_refused",
        since="Only this recent, e.g. 30m, 2h, 7d",
    )
    @app_commands.autocomplete(action=action_autocomplete)
    async def audit(
        interaction: discord.Interaction,
        user: discord.User | None = None,
        action: str | None = None,
        since: str | None = None,
    ) -> None:
        words = ["audit"]
        if user is not None:
            words += ["user", str(user.id)]
        if action:
            words += ["action", one_word(action, "action").lower()]
        if since:
            words += ["since", duration_word(since, "since")]
        await run(interaction, words)

    @admin.command(name="stats", description="Today's jobs, stage times, refusals and busiest users")
    @app_commands.describe(
        here="Owners: this server only (moderators always see their server)", yesterday="Yesterday's (UTC)"
    )
    async def stats(interaction: discord.Interaction, here: bool = False, yesterday: bool = False) -> None:
        await run(interaction, ["stats", *(["here"] if here else []), *(["yesterday"] if yesterday else [])])

    @admin.command(name="check", description="Read an image's Content Credentials and invisible watermark")
    @app_commands.describe(image="The image to check")
    async def check(interaction: discord.Interaction, image: discord.Attachment) -> None:
        if image.size > UPLOAD_MAX_BYTES:
            raise InvalidRequest(
                "check",
                f"That file is {image.size / 1e6:.1f} MB; I read images up to {UPLOAD_MAX_BYTES // 1_000_000} MB.",
            )
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await context_of(interaction).admin.check_image(image.read, requester_of(interaction))
        await interaction.edit_original_response(
            content=reply.text[:MESSAGE_LIMIT], allowed_mentions=NO_MENTIONS
        )

    _add_block(admin)
    _add_style(admin)
    _add_policy(admin)
    _add_lora(admin)
    return admin


def _add_lora(admin: app_commands.Group) -> None:
    lora = app_commands.Group(name="lora", description="LoRAs allowed in this server", parent=admin)

    @lora.command(name="deny", description="Turn a LoRA off in this server")
    @app_commands.describe(name="The LoRA")
    @app_commands.autocomplete(name=lora_autocomplete)
    async def lora_deny(interaction: discord.Interaction, name: str) -> None:
        await run(interaction, ["lora", "deny", one_word(name, "name")])

    @lora.command(name="allow", description="Turn a LoRA back on in this server")
    @app_commands.describe(name="The LoRA")
    @app_commands.autocomplete(name=lora_autocomplete)
    async def lora_allow(interaction: discord.Interaction, name: str) -> None:
        await run(interaction, ["lora", "allow", one_word(name, "name")])

    @lora.command(name="list", description="The LoRAs turned off here")
    async def lora_list(interaction: discord.Interaction) -> None:
        await run(interaction, ["lora", "list"])


def _add_block(admin: app_commands.Group) -> None:
    block = app_commands.Group(name="block", description="Prompt terms refused in this server", parent=admin)

    @block.command(name="add", description="Refuse prompts containing a word or phrase here")
    @app_commands.describe(term="The word or phrase")
    async def block_add(interaction: discord.Interaction, term: str) -> None:
        await run(interaction, ["block", "add", *term.split()])

    @block.command(name="remove", description="Stop refusing a word or phrase here")
    @app_commands.describe(term="The word or phrase")
    async def block_remove(interaction: discord.Interaction, term: str) -> None:
        await run(interaction, ["block", "remove", *term.split()])

    @block.command(name="list", description="The words and phrases refused here")
    async def block_list(interaction: discord.Interaction) -> None:
        await run(interaction, ["block", "list"])


def _add_style(admin: app_commands.Group) -> None:
    style = app_commands.Group(name="style", description="This server's --style presets", parent=admin)

    @style.command(name="add", description="Add a preset: a template with {prompt}, and what to avoid")
    @app_commands.describe(
        name="The preset's name (letters, digits, - or _)",
        template="The prompt around the user's, e.g. “ink drawing of {prompt}, cross-hatching”",
        avoid="Added to --no, comma-separated",
    )
    async def style_add(
        interaction: discord.Interaction, name: str, template: str, avoid: str | None = None
    ) -> None:
        words = ["style", "add", one_word(name, "name"), *template.split()]
        await run(interaction, [*words, *(["--no", *avoid.split()] if avoid else [])])

    @style.command(name="remove", description="Remove one of this server's presets")
    @app_commands.describe(name="The preset's name")
    async def style_remove(interaction: discord.Interaction, name: str) -> None:
        await run(interaction, ["style", "remove", one_word(name, "name")])

    @style.command(name="list", description="The presets usable here")
    async def style_list(interaction: discord.Interaction) -> None:
        await run(interaction, ["style", "list"])


def _add_policy(admin: app_commands.Group) -> None:
    policy = app_commands.Group(
        name="policy", description="This server's rules for the image bot", parent=admin
    )

    @policy.command(
        name="nsfw", description="What to do with NSFW images (only ever in age-restricted channels)"
    )
    @app_commands.describe(value="refuse, spoiler (blurred), allow, or the bot's default")
    @app_commands.choices(
        value=[app_commands.Choice(name=v, value=v) for v in ("refuse", "spoiler", "allow", "default")]
    )
    async def policy_nsfw(interaction: discord.Interaction, value: str) -> None:
        await run(interaction, ["policy", "nsfw", value])

    @policy.command(name="buttons", description="Who may press the buttons under a result")
    @app_commands.describe(who="Only the person who asked, or everyone")
    @app_commands.choices(who=[app_commands.Choice(name=v, value=v) for v in ("owner", "everyone")])
    async def policy_buttons(interaction: discord.Interaction, who: str) -> None:
        await run(interaction, ["policy", "buttons", who])

    @policy.command(name="model", description="The model /imagine uses here unless asked otherwise")
    @app_commands.describe(name="A model name, or “default” for the bot's")
    @app_commands.autocomplete(name=model_autocomplete)
    async def policy_model(interaction: discord.Interaction, name: str) -> None:
        await run(interaction, ["policy", "model", one_word(name, "name")])

    @policy.command(name="logchannel", description="Where moderators get notices, such as automatic bans")
    @app_commands.describe(where="This channel, or no notices")
    @app_commands.choices(where=[app_commands.Choice(name=v, value=v) for v in ("here", "off")])
    async def policy_logchannel(interaction: discord.Interaction, where: str) -> None:
        await run(interaction, ["policy", "logchannel", where])


async def action_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    typed = current.strip().lower()
    return [app_commands.Choice(name=a, value=a) for a in AUDIT_ACTIONS if typed in a][:AUTOCOMPLETE_LIMIT]
