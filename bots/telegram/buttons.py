"""Result buttons (callback_data "ib:…"): decoded here, run by core's one dispatch, `ImagineService.press`.

A press either queued a job (V<i>, 🔄, the one-image buttons: answered with the queue position as a toast),
picked a finished image (U<i>: sent as a document, uncompressed, with its own buttons), opened or changed the
region picker (Vary (Region): a message with the 3×3 toggles, edited in place as they are tapped), or asks
something first (Remix, a region's prompt, Custom Zoom's factor): a ForceReply message whose last line names
the press (core.commands.dialogs.reference), so the user's reply to it, read by `on_answer`, finishes the press
— after a restart too. Every callback query is
answered — with an alert saying what is wrong when the press can't be served (someone else's buttons, an expired
request, data that is no button of ours). Button ids carry all their state, so old messages keep working after
restarts; ownership is checked by core against the stored request.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, ForceReply, InputFile, Message, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes, filters

from bots.telegram.context import BotContext
from bots.telegram.delivery import record_delivery
from bots.telegram.library import Library
from bots.telegram.markup import picker_keyboard, single_keyboard
from bots.telegram.replies import reply_parameters, report_error, send_text
from core import constants as c
from core.commands.buttons import decode_button
from core.commands.dialogs import REF_RE, Ask, Picker, answer_for, referenced_button
from core.commands.links import with_region_link
from core.commands.messages import queued_message
from core.models.request import Requester
from core.models.result import StoredImage
from core.service import Pressed

log = logging.getLogger(__name__)

TOO_OLD = "That message is too old; please run /imagine again."
UNKNOWN = "That button isn't one I know; please run /imagine again."


class Buttons:
    def __init__(self, imagebot: BotContext) -> None:
        self.imagebot = imagebot
        self.library = Library(imagebot)

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        message = query.message
        if message is None:  # too old for Telegram to include: nothing to reply to
            await query.answer(TOO_OLD, show_alert=True)
            return
        reply_to = {"chat_id": str(message.chat.id), "message_id": str(message.message_id)}
        try:
            requester = await self.imagebot.requester(context.bot, query.from_user, message.chat)
            pressed = await self.imagebot.service.press(
                decode_button(query.data), requester, reply_to=reply_to
            )
        except Exception as exc:
            await report_error(exc, context.bot, query=query)
            return
        if pressed.image is not None:
            await self._send_image(query, pressed, pressed.image, context)
            return
        if pressed.picker is not None:
            await self._show_picker(query, pressed, pressed.picker, context, requester)
            return
        if pressed.ask is not None:
            await query.answer()
            await self._ask(context, message.chat.id, message.message_id, pressed.ask, to_user=False)
            return
        try:
            shown = await self.library.answer_press(pressed, message, context.bot, requester)
        except Exception as exc:
            await report_error(exc, context.bot, query=query)
            return
        if shown is not None:
            await query.answer(shown)
            return
        assert pressed.submission is not None
        await query.answer(queued_message(pressed.submission))
        if pressed.button.action in (c.ACTION_REGION_SUBMIT, c.ACTION_REGION_PROMPT):
            await self._close_picker(context, message, queued_message(pressed.submission))
        try:
            await context.bot.send_chat_action(message.chat.id, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            log.debug("chat action failed: %s", exc)

    async def on_answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply to one of our questions (ANSWERS): the press it names, finished with what was typed."""
        message = update.effective_message
        reply = message.reply_to_message if message is not None else None
        button = referenced_button(reply.text or "") if reply is not None else None
        if message is None or message.from_user is None or button is None:
            return
        chat_id = message.chat.id
        try:
            requester = await self.imagebot.requester(context.bot, message.from_user, message.chat)
            reply_to = {"chat_id": str(chat_id), "message_id": str(message.message_id)}
            pressed = await self.imagebot.service.press(
                button, requester, reply_to=reply_to, answer=answer_for(button, message.text or "")
            )
        except Exception as exc:
            await report_error(exc, context.bot, chat_id=chat_id, reply_to=message.message_id)
            return
        if pressed.ask is not None:  # Custom Zoom's factor is in; Remix asks for the prompt next
            await self._ask(context, chat_id, message.message_id, pressed.ask)
        elif pressed.submission is not None:
            await send_text(
                context.bot, chat_id, queued_message(pressed.submission), reply_to=message.message_id
            )

    async def _ask(
        self,
        context: ContextTypes.DEFAULT_TYPE,
        chat_id: int,
        reply_to: int,
        ask: Ask,
        *,
        to_user: bool = True,
    ) -> None:
        """A question as a ForceReply message; its text ends with the press it finishes. `to_user`: it
        replies to the user's own message, so only they are asked (selective)."""
        placeholder = "1.5" if ask.wants_factor else (ask.prompt or "a new prompt")[:64]
        await context.bot.send_message(
            chat_id,
            ask.question,
            reply_markup=ForceReply(selective=to_user, input_field_placeholder=placeholder),
            reply_parameters=reply_parameters(reply_to),
        )

    async def _show_picker(
        self,
        query: CallbackQuery,
        pressed: Pressed,
        picker: Picker,
        context: ContextTypes.DEFAULT_TYPE,
        requester: Requester,
    ) -> None:
        """Vary (Region) opens the picker as a message of its own; a tap on a square redraws it in place. In a
        private chat it also links to the web's region editor (a link is the presser's own: never in groups)."""
        assert query.message is not None
        await query.answer()
        chat_id, message_id = query.message.chat.id, query.message.message_id
        private = query.message.chat.type == ChatType.PRIVATE
        text = with_region_link(
            picker.text, self.imagebot.settings, requester, picker.request_id, picker.index, private=private
        )
        if pressed.button.action == c.ACTION_VARY_REGION:
            await context.bot.send_message(
                chat_id,
                text,
                reply_markup=picker_keyboard(picker),
                reply_parameters=reply_parameters(message_id),
            )
            return
        try:
            await context.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=picker_keyboard(picker)
            )
        except BadRequest as exc:  # a double tap: already drawn so
            if "not modified" not in exc.message:
                raise

    async def _close_picker(self, context: ContextTypes.DEFAULT_TYPE, message: object, text: str) -> None:
        """The region is on its way: the picker says so and loses its squares."""
        if not isinstance(message, Message):
            return
        try:
            await context.bot.edit_message_text(text, chat_id=message.chat.id, message_id=message.message_id)
        except TelegramError as exc:
            log.debug("region picker not closed (%s)", exc)

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Any other callback query (no prefix of ours, random bytes, an old bot's buttons): answered, so the
        button stops spinning, with what to do instead."""
        query = update.callback_query
        if query is not None:
            log.info("unknown callback data %r from user %s", (query.data or "")[:64], query.from_user.id)
            await query.answer(UNKNOWN, show_alert=True)

    async def _send_image(
        self, query: CallbackQuery, pressed: Pressed, image: StoredImage, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        """U<i>: image i at full size as a document (uncompressed), with its own buttons."""
        assert query.message is not None
        request_id, index = pressed.button.request_id, pressed.button.index or 0
        try:
            data = await self.imagebot.service.store.get(image.key)
        except Exception as exc:
            await report_error(exc, context.bot, query=query, request_id=request_id)
            return
        await query.answer(f"Sending image {index + 1}…")
        chat_id = query.message.chat.id
        seed = f" · seed {image.seed}" if image.seed is not None else ""
        try:
            sent = await context.bot.send_document(
                chat_id,
                InputFile(data, filename=f"{request_id}-{index + 1}.png"),
                caption=f"Image {index + 1} · {image.width}×{image.height}{seed}",
                reply_markup=single_keyboard(request_id, index, image.url),
                reply_parameters=reply_parameters(query.message.message_id),
            )
            await record_delivery(self.imagebot.deliveries, request_id, sent)
        except Exception as exc:  # the query is answered already: say it in the chat instead
            await report_error(
                exc, context.bot, chat_id=chat_id, reply_to=query.message.message_id, request_id=request_id
            )


class _AnswerFilter(filters.MessageFilter):
    """A message replying to one of our questions (its text ends with a reference to the press)."""

    def filter(self, message: Message) -> bool:
        reply = message.reply_to_message
        return reply is not None and REF_RE.search(reply.text or "") is not None


ANSWERS = filters.TEXT & ~filters.COMMAND & _AnswerFilter()
