"""/forget: a user deletes their own data (core.governance.forget) once they press “Forget me”.

The command answers privately with what would go and two buttons whose custom_ids come from core
("fg:y:<token>" / "fg:n:<token>"); `ForgetButton` (a DynamicItem) routes any such id with no in-memory view.
Only the person who sent /forget can confirm (core checks the token's owner). Confirmed, the buttons go at once
("Forgetting you…"), the work is done, and a private follow-up lists what was removed; the result messages that
showed their images are deleted too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands

from bots.discord.context import context_of
from bots.discord.location import remove
from bots.discord.replies import NO_MENTIONS, send_error
from bots.discord.requester import requester_of
from core import constants as c
from core.governance.forget import BUTTON_PATTERN, forget_button

log = logging.getLogger(__name__)

TEMPLATE = BUTTON_PATTERN.removeprefix("^").removesuffix("$")
KEPT = "Nothing was deleted; I still have your data. Use /forget again if you change your mind."


def is_forget_button(custom_id: str) -> bool:
    return re.fullmatch(TEMPLATE, custom_id) is not None


class ForgetButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    def __init__(self, token: str, confirm: bool) -> None:
        super().__init__(
            discord.ui.Button(
                label="Forget me" if confirm else "Keep my data",
                custom_id=forget_button(token, confirm),
                style=discord.ButtonStyle.danger if confirm else discord.ButtonStyle.secondary,
            )
        )
        self.token = token
        self.confirm = confirm

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ForgetButton:
        return cls(match["token"], match["answer"] == c.FORGET_YES)

    async def callback(self, interaction: discord.Interaction) -> None:
        context = context_of(interaction)
        forgetter = context.service.forgetter
        requester = requester_of(interaction)
        try:
            if not self.confirm:
                await forgetter.keep(self.token, requester)
                await interaction.response.edit_message(content=KEPT, view=None)
                return
            await forgetter.check(self.token, requester)  # before the buttons go: only theirs to press
            await interaction.response.edit_message(content="Forgetting you…", view=None)
            done = await forgetter.confirm(self.token, requester)
            removed = 0
            for where in done.messages:
                if where.get("platform", "discord") == "discord":
                    removed += await remove(interaction.client, context, where)
            await interaction.followup.send(done.text(removed), ephemeral=True, allowed_mentions=NO_MENTIONS)
        except Exception as exc:
            await send_error(interaction, exc)


@app_commands.command(name="forget", description="Delete everything I keep about you (asks first)")
async def forget(interaction: discord.Interaction) -> None:
    plan = await context_of(interaction).service.forgetter.plan(requester_of(interaction))
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton(plan.token, True))
    view.add_item(ForgetButton(plan.token, False))
    await interaction.response.send_message(
        plan.text(), view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
    )
