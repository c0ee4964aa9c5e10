"""The shutdown sweep both bots' tests run: start the bot once per await of a part of it and cancel it there.

A platform's test subclasses `NoticeSweep` with how to start its bot, where a notice is posted, and what else a
stopped bot must not do (a Telegram poller left polling). Each run is a new consumer, so a result an earlier
(cancelled) run left behind is not in its way; the last run, claiming at once, delivers what they left, and every
notice must then have been posted exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.delivery.events import EventPublisher
from core.models.ids import new_request_id
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent
from tests.cancel_points import CancelPoints

STOPPED_WITHIN_S = 20.0  # a stop takes well under a second here; a bot that hangs fails the test
STOP_GRACE_S = 30.0  # a delivery in progress may finish: the sweep never depends on the grace running out


class NoticeSweep:
    platform: Platform

    def __init__(self, publisher: EventPublisher, chat_id: str, reply_to: dict[str, str]) -> None:
        self.publisher = publisher
        self.chat_id = chat_id
        self.reply_to = reply_to
        self.notices: list[str] = []
        self.runs = 0

    # -- what a platform's sweep says ------------------------------------------------------------------------

    def start(self, claim_idle_s: float = 3600.0) -> asyncio.Task[None]:
        """A new run of the bot (count it in self.runs), reading its stream as a consumer of its own."""
        raise NotImplementedError

    def posted(self, text: str) -> int:
        """How many times `text` was posted in the chat."""
        raise NotImplementedError

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until `predicate` holds (the platform's emulator wakes this when it records a call)."""
        raise NotImplementedError

    async def also_stopped(self, where: str) -> None:
        """Anything else a stopped bot must have stopped (nothing by default)."""

    # -- the sweep --------------------------------------------------------------------------------------------

    async def publish(self, text: str) -> None:
        requester = Requester(platform=self.platform, user_id="1", chat_id=self.chat_id)
        notice = ResultEvent(
            kind=EventKind.NOTICE,
            request_id=new_request_id(),
            message=text,
            requester=requester,
            reply_to=self.reply_to,
        )
        await self.publisher.publish(notice)
        self.notices.append(text)

    async def wait_posted(self, text: str) -> None:
        await self.wait_for(lambda: self.posted(text) > 0)

    async def stopped(self, bot: asyncio.Task[None], where: str) -> None:
        done, _ = await asyncio.wait({bot}, timeout=STOPPED_WITHIN_S)
        assert done, f"the bot cancelled {where} did not stop"
        assert bot.cancelled(), bot.exception()
        await self.also_stopped(where)

    async def cancel_at(self, points: CancelPoints, bot: asyncio.Task[None], n: int, notice: str) -> None:
        """Cancel `bot` at the n-th await from now, or when it idles (its notice posted) before that."""
        points.cancel_at(bot, n)
        quiet, seen = 0, points.suspensions
        async with asyncio.timeout(STOPPED_WITHIN_S):
            while points.pending and not bot.done():
                await asyncio.sleep(0.01)
                quiet, seen = (quiet + 1 if points.suspensions == seen else 0), points.suspensions
                if quiet >= 5 and self.posted(notice):
                    points.forget()
                    bot.cancel()

    async def sweep(self, functions: tuple[Callable[..., Any], ...], part: str) -> int:
        """Cancel the bot at each await of `functions` from its start on; returns how many awaits were swept."""
        with CancelPoints(*functions) as points:
            await self.publish(f"{part}: measured")
            before, bot = points.suspensions, self.start()
            await self.wait_posted(f"{part}: measured")
            awaits = points.suspensions - before + 12  # the rest of the delivery, then an idle read or two
            bot.cancel()
            await self.stopped(bot, "when idle")
            for n in range(1, awaits + 1):
                await self.publish(f"{part}: {n}")
                bot = self.start()
                await self.cancel_at(points, bot, n, f"{part}: {n}")
                await self.stopped(bot, f"at await #{n} of its {part} ({points.where})")
        return awaits

    async def deliver_what_was_left(self) -> None:
        """A last run claims at once what the cancelled runs left; then every notice is posted exactly once."""
        last = self.start(claim_idle_s=0.001)
        await self.wait_for(lambda: all(self.posted(text) for text in self.notices))
        await asyncio.sleep(0.2)  # time for a second copy to show, if one were coming
        last.cancel()
        await self.stopped(last, "at the end")
        assert {text: self.posted(text) for text in self.notices} == dict.fromkeys(self.notices, 1)
