"""STARTED/PROGRESS events → the "uploading photo" chat action and the progress shown in the chat, throttled.

When to edit is core's decision (core/delivery/progress.py, shared with the Discord bot): at most one edit per
`interval_s` per request, always the latest step with the newest live preview, and nothing once the request has
ended, so "Rendering… 80%" never overwrites a result or an error. This module owns the timer that shows held steps
when their interval ends.

Where the progress shows: the status message ("Queued…") is text, and Telegram can't turn a text message into a
photo by editing (editMessageMedia needs a message with media). So the first live preview (image-checked by the
worker) is sent as a silent photo replying to the request, its caption the progress, and the status message is
deleted — but only when the render has at least `photo_min_left_s` left at its pace so far (core's
`seconds_left`): a fast render's result would replace the photo before anyone saw it, and the photo would take
the chat's turn from the result. From then on each update is one edit of that photo: editMessageMedia (the new
picture and caption together) when it brings a picture, editMessageCaption when it brings only a step. Without
previews (turned off, the OpenAI backend, a picture the image check refused, a render about to end) the status
message is edited as text, as before. Which photo shows a request's progress is kept in Redis
(core/delivery/preview_message.py), so the process that delivers the result removes it (`remove`) even after a
restart or on another replica.

Progress is advisory: a failed edit is logged at DEBUG and dropped, never retried (a 429 is not waited out, and
the photo is simply not started then); the result never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from telegram import InputFile, InputMediaPhoto
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from bots.telegram.rate_limiter import NO_RETRIES
from bots.telegram.replies import edit_advisory, reply_parameters, unmentioned
from core.commands.messages import progress_message
from core.delivery.preview_message import PreviewMessages
from core.delivery.progress import (
    ENDED_REMEMBERED,
    ProgressCoalescer,
    keep_live_preview,
    seconds_left,
    show_held,
)
from core.models.result import EventKind, ResultEvent
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PREVIEW_FILE = "preview.jpg"
ENDED = "Finished — see the reply below."  # a preview's caption when Telegram won't delete it any more


@dataclass
class _Seen:
    """What the display knows of one request: its first event (for its pace) and the furthest step shown."""

    first: ResultEvent
    step: int = 0


class _Turn:
    """One request's progress message changes one call at a time; forgotten when nobody holds or awaits it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class ProgressDisplay:
    def __init__(
        self, bot: ExtBot[Any], interval_s: float, previews: PreviewMessages, *, photo_min_left_s: float = 4.0
    ) -> None:
        self.bot = bot
        self.previews = previews
        self.photo_min_left_s = photo_min_left_s
        self._seen: OrderedDict[str, _Seen] = OrderedDict()  # request id → what is known of it, oldest first
        self.coalescer: ProgressCoalescer[str, ResultEvent] = ProgressCoalescer(
            interval_s, merge=keep_live_preview
        )
        self._turns: dict[str, _Turn] = {}  # request id → its turn, while its progress message changes
        self._timer: asyncio.Task[None] | None = None

    async def show(self, chat_id: int, event: ResultEvent) -> None:
        """Show a STARTED or PROGRESS event now, or hold it until its request's interval ends."""
        if self.coalescer.ended(event.request_id):
            return
        if event.kind is EventKind.STARTED:
            await self._chat_action(chat_id, event)
        if event.request_id not in self._seen:
            self._seen[event.request_id] = _Seen(event)
            while len(self._seen) > ENDED_REMEMBERED:
                self._seen.popitem(last=False)
        ready = self.coalescer.offer(event.request_id, event, time.monotonic())
        if ready is not None:
            await self._update(ready)
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(
                show_held(self.coalescer, lambda _, held: self._update(held)), name="telegram-progress"
            )

    async def end(self, request_id: str) -> int | None:
        """The request has ended (its result is being delivered): none of its progress is shown any more, and
        an update on its way lands first. Returns the photo showing its live preview, for `remove`, or None."""
        self.coalescer.end(request_id)
        self._seen.pop(request_id, None)
        async with self._turn(request_id):
            pass
        try:
            photo = await self.previews.end(request_id)
        except (RedisError, OSError) as exc:  # the result matters more than removing its preview
            log.warning("request %s: its live preview's photo is unknown (%s); it may stay", request_id, exc)
            return None
        return int(photo) if photo else None

    async def remove(self, chat_id: int, request_id: str, photo: int) -> None:
        """The result is out: the photo that showed the progress goes. Where Telegram won't delete it (a bot may
        delete only messages under 48 hours old), its caption points to the reply."""
        try:
            await self.bot.delete_message(chat_id, photo)
        except TelegramError as exc:
            if "not found" not in exc.message.lower():
                log.info("request %s: preview %s not deleted (%s)", request_id, photo, exc.message)
                with contextlib.suppress(TelegramError):
                    await self.bot.edit_message_caption(chat_id=chat_id, message_id=photo, caption=ENDED)
        try:
            await self.previews.forget(request_id)
        except (RedisError, OSError) as exc:  # the result is out: raising would post it again
            log.warning("request %s: its removed preview is still recorded (%s)", request_id, exc)

    async def close(self) -> None:
        """Drop what is held (the bot is stopping)."""
        if self._timer is not None:
            await cancel_and_wait(self._timer)
            self._timer = None

    async def _chat_action(self, chat_id: int, event: ResultEvent) -> None:
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            log.debug("request %s: chat action not shown (%s)", event.request_id, exc)

    @contextlib.asynccontextmanager
    async def _turn(self, request_id: str) -> AsyncIterator[None]:
        turn = self._turns.setdefault(request_id, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if not turn.users:
                del self._turns[request_id]

    async def _update(self, event: ResultEvent) -> None:
        async with self._turn(event.request_id):
            if not self.coalescer.ended(event.request_id):
                try:
                    await self._show_now(event)
                except (RedisError, OSError) as exc:  # advisory: never held up, never retried
                    log.debug("request %s: progress not shown (%s)", event.request_id, exc)
                self.coalescer.landed(event.request_id, time.monotonic())  # the next edit counts from here

    async def _show_now(self, event: ResultEvent) -> None:
        chat_id = int(event.reply_to["chat_id"])
        if event.kind is EventKind.PROGRESS:
            await self._chat_action(chat_id, event)  # keeps "uploading photo" showing on long renders
        seen = self._seen.get(event.request_id)
        if seen is not None and event.step is not None:  # a preview checked after a later step: no step back
            seen.step = max(seen.step, event.step)
            event = event.model_copy(update={"step": seen.step})
        text = progress_message(event)
        picture = event.live_preview_jpeg()
        photo = await self.previews.shown(event.request_id)
        if photo is not None:
            await self._edit_photo(chat_id, int(photo), text, picture)
        elif (
            picture is not None and self._worth_a_photo(event) and await self.previews.claim(event.request_id)
        ):
            await self._start_photo(chat_id, event, text, picture)
        elif status := event.reply_to.get("status_message_id"):
            await edit_advisory(self.bot, chat_id, status, text)

    def _worth_a_photo(self, event: ResultEvent) -> bool:
        """Whether the render has long enough left for a photo of its own (True when its pace is unknown)."""
        seen = self._seen.get(event.request_id)
        left = seconds_left(seen.first, event) if seen is not None else None
        return left is None or left >= self.photo_min_left_s

    async def _start_photo(self, chat_id: int, event: ResultEvent, text: str, picture: bytes) -> None:
        """The first live preview: a silent photo replying to the request replaces the status message."""
        request_id = event.request_id
        try:
            sent = await self.bot.send_photo(
                chat_id,
                InputFile(picture, filename=PREVIEW_FILE),
                caption=unmentioned(text),
                disable_notification=True,
                reply_parameters=reply_parameters(event.reply_to.get("message_id")),
                rate_limit_args=NO_RETRIES,
            )
        except TelegramError as exc:
            log.debug("request %s: live preview not sent (%s); progress stays text", request_id, exc)
            await self.previews.release(request_id)
            return
        if not await self.previews.record(request_id, str(sent.message_id)):  # it ended meanwhile
            with contextlib.suppress(TelegramError):
                await self.bot.delete_message(chat_id, sent.message_id)
            return
        status = event.reply_to.get("status_message_id")
        if status:
            try:
                await self.bot.delete_message(chat_id, int(status), rate_limit_args=NO_RETRIES)
            except TelegramError as exc:  # the delivery removes it with the result
                log.debug("request %s: status message not deleted yet (%s)", request_id, exc)

    async def _edit_photo(self, chat_id: int, photo: int, text: str, picture: bytes | None) -> None:
        """One edit: the new picture with its caption, or the caption alone."""
        caption = unmentioned(text)
        try:
            if picture is not None:
                upload = InputFile(picture, filename=PREVIEW_FILE, attach=True)  # sent as attach://…
                media = InputMediaPhoto(upload, caption=caption)
                await self.bot.edit_message_media(
                    media, chat_id=chat_id, message_id=photo, rate_limit_args=NO_RETRIES
                )
            else:
                await self.bot.edit_message_caption(
                    chat_id=chat_id, message_id=photo, caption=caption, rate_limit_args=NO_RETRIES
                )
        except BadRequest as exc:
            if "not modified" not in exc.message:
                log.debug("preview %s in chat %s not edited (%s)", photo, chat_id, exc.message)
        except TelegramError as exc:
            log.debug("preview %s in chat %s not edited (%s)", photo, chat_id, exc)
