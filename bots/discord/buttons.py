"""Persistent buttons: a DynamicItem that parses core's button ids, so buttons work after restarts.

A custom_id is core's id ("ib:v:<request id>:2", at most 24 characters): it carries all the state, and the
template below routes any such id to `CoreButton` with no in-memory view. What a press does is in actions.py.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from core import constants as c
from core.commands.buttons import PREFIX, Button, button_label, decode_button

TEMPLATE = rf"{PREFIX}:(?P<action>[a-z0-9]{{1,2}}):(?P<request_id>[a-z2-7]{{16}})(?::(?P<index>[0-3]))?"
CUSTOM_ID_LIMIT = 100

_STYLES = {c.ACTION_REROLL: discord.ButtonStyle.primary}


class CoreButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    def __init__(self, button: Button, row: int | None = None) -> None:
        custom_id = button.encode()
        if len(custom_id) > CUSTOM_ID_LIMIT:
            raise ValueError(f"button id {custom_id!r} is longer than Discord's {CUSTOM_ID_LIMIT} characters")
        super().__init__(
            discord.ui.Button(
                label=button_label(button),
                custom_id=custom_id,
                style=_STYLES.get(button.action, discord.ButtonStyle.secondary),
            ),
            row=row,
        )
        self.button = button

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CoreButton:
        return cls(decode_button(match.group(0)))

    async def callback(self, interaction: discord.Interaction) -> None:
        from bots.discord.actions import press

        await press(interaction, self.button)
