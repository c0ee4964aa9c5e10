"""The Discord front end (discord.py): slash commands, persistent buttons, results delivered from the stream."""

from bots.discord.app import run_discord_bot

__all__ = ["run_discord_bot"]
