"""Results from the Discord event stream, rendered into the reply each command left.

While the interaction token lives (15 minutes; `token_lifetime_s` keeps a margin), the reply is edited through
the interaction webhook; afterwards, or when the reply is gone, the result is posted to the channel with the bot
token and mentions the user, unless the reply was private (reply_to["ephemeral"]): then it goes to the user's
DMs, and when they take none it is dropped with a warning, never shown in the channel. Where a result was
posted goes to core's DeliveryLog (location.py), so `/admin delete` can remove the message. A terminal event
whose delivery fails raises, so the EventConsumer retries it; discord.py itself waits out 429s (retry_after)
on every path. STARTED/PROGRESS are advisory and throttled (progress.py), and dropped on any failure.
NOTICE events (automatic bans…) go to the community's log channel with the bot token.
"""

from __future__ import annotations

import io
import logging

import discord

from bots.discord.buttons import result_view
from bots.discord.context import BotContext
from bots.discord.location import location, remember, reply_webhook
from bots.discord.markup import full_size_url
from bots.discord.picture import Picture, picture
from bots.discord.progress import ProgressThrottle
from bots.discord.replies import NO_MENTIONS, mention_only
from core.commands.buttons import result_buttons
from core.commands.describe import described_text, suggestion_buttons
from core.commands.messages import progress_message, result_caption
from core.errors import NotFound
from core.models.request import GenerationRequest
from core.models.result import EventKind, ResultEvent

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
DEFAULT_SIZE_LIMIT = 10 * 1024 * 1024
_WEBHOOK_GONE = (10008, 10015, 50027)  # unknown message, unknown webhook, invalid webhook token
_FALLBACK_TEXT = {
    EventKind.FAILED: "Sorry — something went wrong while drawing this (reference {id}). Please try again.",
    EventKind.REFUSED: "I can't show this result. Please change your prompt and try again.",
    EventKind.CANCELLED: "Cancelled.",
}


class Delivery:
    def __init__(self, client: discord.Client, context: BotContext) -> None:
        self.client = client
        self.context = context
        self.progress = ProgressThrottle(context.progress_interval_s, self._edit_progress)

    async def handle(self, event: ResultEvent) -> None:
        target = event.reply_to
        if event.kind is EventKind.NOTICE:
            await self._notice(event, target)
            return
        if "channel_id" not in target:
            log.warning("request %s: no Discord reply target; dropping %s", event.request_id, event.kind)
            return
        # A request stored before interaction ids were kept has none: its result is posted anew.
        reply = target.get("interaction_id") or event.request_id
        if not event.terminal:
            if "message_id" in target and not self.context.acks.pending(reply):
                await self.progress.show(reply, event, target)
            return
        self.progress.finish(event.request_id)
        await self.progress.end(reply)
        await self.context.acks.wait(reply)
        if event.kind is EventKind.DONE:
            await self._done(event, target)
        elif event.kind is EventKind.DESCRIBED:
            view = result_view(suggestion_buttons(event))
            await self._reply(event, target, described_text(event)[:MESSAGE_LIMIT], Picture(), view)
        else:
            text = event.message or _FALLBACK_TEXT[event.kind].format(id=event.request_id)
            await self._reply(event, target, text[:MESSAGE_LIMIT], Picture(), None)
        log.info("request %s: %s delivered", event.request_id, event.kind)

    async def close(self) -> None:
        await self.progress.close()

    async def _notice(self, event: ResultEvent, target: dict[str, str]) -> None:
        """A notice for moderators (an automatic ban…), posted to the community's log channel."""
        channel_id = target.get("channel_id", "")
        if not channel_id.isdigit() or not event.message:
            log.warning("notice %s: no Discord channel or no text; dropping it", event.request_id)
            return
        channel = self.client.get_partial_messageable(int(channel_id))
        try:
            await channel.send(content=event.message[:MESSAGE_LIMIT], allowed_mentions=NO_MENTIONS)
        except (discord.Forbidden, discord.NotFound):
            log.warning("notice %s: channel %s refused it or is gone", event.request_id, channel_id)

    async def _edit_progress(self, event: ResultEvent, target: dict[str, str]) -> None:
        webhook = await reply_webhook(self.client, self.context, target)
        if webhook is None:
            return
        # The worker's live preview (image-checked there) replaces the last one; without one, the last stays.
        jpeg = event.live_preview_jpeg()
        preview = [discord.File(io.BytesIO(jpeg), "preview.jpg")] if jpeg else discord.utils.MISSING
        try:
            await webhook.edit_message(
                int(target["message_id"]),
                content=progress_message(event),
                allowed_mentions=NO_MENTIONS,
                attachments=preview,
            )
        except discord.HTTPException as exc:
            log.info("request %s: progress edit failed (%s)", event.request_id, exc.status)

    async def _done(self, event: ResultEvent, target: dict[str, str]) -> None:
        request = await self._request(event.request_id)
        spoiler = any(image.spoiler for image in event.images)
        limit = int(target.get("size_limit") or DEFAULT_SIZE_LIMIT)
        candidates = (
            [event.grid, event.preview]
            if len(event.images) > 1
            else [event.images[0] if event.images else None, event.preview]
        )
        shown = await picture(
            self.context.service.store, candidates, limit, stem=event.request_id, spoiler=spoiler
        )
        caption = result_caption(request, event, limit=MESSAGE_LIMIT - 100)
        if shown.note:
            caption += "\n" + shown.note
        extra = []
        if event.control is not None:  # the control map a ControlNet followed, beside the result
            extra.append(
                await picture(
                    self.context.service.store,
                    [event.control],
                    limit,
                    stem=f"{event.request_id}-control",
                    spoiler=False,
                )
            )
        rows = result_buttons(event.request_id, request.mode if request else None, event.shown_indices)
        view = result_view(rows, full_size_url(event))
        where = await self._reply(event, target, caption, shown, view, extra)
        if where is not None:
            await remember(self.context, event.request_id, where)

    async def _reply(
        self,
        event: ResultEvent,
        target: dict[str, str],
        text: str,
        shown: Picture,
        view: discord.ui.View | None,
        extra: list[Picture] | None = None,
    ) -> dict[str, str] | None:
        """Edit the command's reply (or post it anew); returns where the message is (location.py), or None
        when a private result could not be sent to the user's DMs. `extra` pictures go after the result's."""
        pictures = [shown, *(extra or [])]
        files = [item.file for item in pictures if item.file]
        embeds = [item.embed for item in pictures if item.embed]
        webhook = await reply_webhook(self.client, self.context, target) if "message_id" in target else None
        if webhook is not None:
            try:
                await webhook.edit_message(
                    int(target["message_id"]),
                    content=text,
                    attachments=files,
                    embeds=embeds,
                    view=view if view is not None else discord.utils.MISSING,
                    allowed_mentions=NO_MENTIONS,
                )
                return location(
                    target["channel_id"],
                    target["message_id"],
                    application_id=target["application_id"],
                    interaction_id=target["interaction_id"],
                    created_at=target.get("created_at"),
                )
            except discord.HTTPException as exc:
                if exc.code not in _WEBHOOK_GONE and exc.status != 404:
                    raise
                log.info("request %s: the reply is gone (%s); posting it anew", event.request_id, exc.code)
                for file in files:
                    file.reset()
        if target.get("ephemeral") == "1":
            return await self._direct(event, target, text, files, embeds, view)
        channel = self.client.get_partial_messageable(int(target["channel_id"]))
        user_id = target.get("user_id", "")
        message = await channel.send(
            content=((f"<@{user_id}> " if user_id else "") + text)[:MESSAGE_LIMIT],
            files=files,
            embeds=embeds,
            view=view if view is not None else discord.utils.MISSING,
            allowed_mentions=mention_only(user_id),
        )
        if webhook is None:
            await self._remove_stale(event, target)
        return location(message.channel.id, message.id)

    async def _remove_stale(self, event: ResultEvent, target: dict[str, str]) -> None:
        """The command's reply ("Queued — position 1") once the result was posted anew: the interaction's
        token is gone, so it goes with the bot token (the bot is its author)."""
        if "message_id" not in target:
            return
        channel = self.client.get_partial_messageable(int(target["channel_id"]))
        try:
            await channel.get_partial_message(int(target["message_id"])).delete()
        except discord.NotFound:
            pass
        except discord.HTTPException as exc:
            log.info("request %s: could not remove the stale reply (%s)", event.request_id, exc.status)

    async def _direct(
        self,
        event: ResultEvent,
        target: dict[str, str],
        text: str,
        files: list[discord.File],
        embeds: list[discord.Embed],
        view: discord.ui.View | None,
    ) -> dict[str, str] | None:
        """A private result whose interaction is gone goes to the user's DMs: never to the channel."""
        try:
            channel = await self.client.create_dm(discord.Object(int(target["user_id"])))
            message = await channel.send(
                content=text[:MESSAGE_LIMIT],
                files=files,
                embeds=embeds,
                view=view if view is not None else discord.utils.MISSING,
                allowed_mentions=NO_MENTIONS,
            )
        except discord.Forbidden:
            log.warning(
                "request %s: user %s takes no DMs; the private result is not posted",
                event.request_id,
                target["user_id"],
            )
            return None
        return location(message.channel.id, message.id)

    async def _request(self, request_id: str) -> GenerationRequest | None:
        try:
            return await self.context.service.queue.load(request_id)
        except NotFound:
            return None
