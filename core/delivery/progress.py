"""When a progress message is worth editing, for every front end: pure logic, no clock and no timers of its own.

Workers report progress often; chat platforms allow few edits. For each message (keyed by whatever the front end
edits: a request id, a message id) the coalescer lets the first update through at once, then at most one per
`interval_s`. Updates that arrive inside the interval are held, a newer one replacing an older one, so when the
interval ends the latest step is shown (`keep_live_preview` as `merge` keeps a held live preview that a newer
update without one would otherwise drop, so a front end still shows the newest picture). Once a message's request
has ended (`end`), nothing more is shown for it, so "Rendering… 80%" never overwrites a result or an error.

The caller owns time: it passes `now` in, shows what `offer` returns, and at `next_due()` calls `due(now)` and
shows what that returns — `show_held` is that loop, for front ends that run it as a task. A front end whose edits
may wait for the platform's rate limit tells `landed` when each was made, so the interval counts from there.
Memory is bounded: a key is forgotten once its interval has passed with nothing held, and only the last
`ended_remembered` ended keys are kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.models.result import ResultEvent

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

ENDED_REMEMBERED = 4096


@dataclass
class _Slot(Generic[T]):
    shown_at: float  # when the last update for this key was let through
    held: T | None = None  # the latest update waiting for the interval to end


def keep_live_preview(held: ResultEvent, newer: ResultEvent) -> ResultEvent:
    """`newer`, carrying `held`'s live preview when it has none of its own, and `held`'s step when that was further
    (a preview is published once checked, so it may arrive after a later step): the furthest step, newest picture."""
    changes: dict[str, object] = {}
    if newer.live_preview is None and held.live_preview is not None:
        changes["live_preview"] = held.live_preview
    if newer.step is not None and held.step is not None and held.step > newer.step:
        changes["step"] = held.step
    return newer.model_copy(update=changes) if changes else newer


class ProgressCoalescer(Generic[K, T]):
    def __init__(
        self,
        interval_s: float,
        *,
        merge: Callable[[T, T], T] | None = None,
        ended_remembered: int = ENDED_REMEMBERED,
    ) -> None:
        """`merge(held, newer)` is what is held when a newer update arrives (default: the newer one)."""
        if interval_s < 0:
            raise ValueError("interval_s must be 0 or more")
        self.interval_s = interval_s
        self.merge = merge
        self.ended_remembered = ended_remembered
        self._slots: OrderedDict[K, _Slot[T]] = OrderedDict()  # oldest shown first
        self._ended: OrderedDict[K, None] = OrderedDict()

    def offer(self, key: K, update: T, now: float) -> T | None:
        """The update to show now, or None: held until the interval ends, or dropped (the request ended)."""
        if key in self._ended:
            return None
        self._forget_idle(now)
        slot = self._slots.get(key)
        if slot is None or now >= slot.shown_at + self.interval_s:
            self._mark_shown(key, now)
            return update
        held = slot.held
        slot.held = update if held is None or self.merge is None else self.merge(held, update)
        return None

    def due(self, now: float) -> list[tuple[K, T]]:
        """The held updates whose interval has ended, oldest first; each counts as shown at `now`."""
        ready = [
            (key, slot.held)
            for key, slot in self._slots.items()
            if slot.held is not None and now >= slot.shown_at + self.interval_s
        ]
        for key, _ in ready:
            self._mark_shown(key, now)
        return ready

    def landed(self, key: K, now: float) -> None:
        """The update let through for `key` has reached the platform at `now` (it may have waited for the
        platform's rate limit): the interval counts from here, so edits land at least `interval_s` apart."""
        if key in self._ended:
            return
        slot = self._slots.get(key)
        if slot is None:
            self._mark_shown(key, now)
        else:
            slot.shown_at = max(slot.shown_at, now)
            self._slots.move_to_end(key)

    def next_due(self) -> float | None:
        """When the earliest held update falls due (None: nothing is held)."""
        times = [slot.shown_at + self.interval_s for slot in self._slots.values() if slot.held is not None]
        return min(times, default=None)

    def end(self, key: K) -> None:
        """The request behind `key` has ended: drop what is held and ignore anything that comes later."""
        self._slots.pop(key, None)
        self._ended[key] = None
        self._ended.move_to_end(key)
        while len(self._ended) > self.ended_remembered:
            self._ended.popitem(last=False)

    def ended(self, key: K) -> bool:
        return key in self._ended

    def __len__(self) -> int:
        """How many keys are remembered (shown recently or holding an update)."""
        return len(self._slots)

    def _mark_shown(self, key: K, now: float) -> None:
        self._slots[key] = _Slot(now)
        self._slots.move_to_end(key)

    def _forget_idle(self, now: float) -> None:
        """Forget keys whose interval has passed with nothing held: they no longer limit anything."""
        while self._slots:
            key, slot = next(iter(self._slots.items()))
            if slot.held is not None or now < slot.shown_at + self.interval_s:
                return
            del self._slots[key]


def seconds_left(earlier: ResultEvent, latest: ResultEvent) -> float | None:
    """How long a render has left at its pace between two of its events (both stamped by the worker's clock), or
    None when they don't tell (no step done between them). A front end that would post a message of its own for
    a live preview asks this first: a render about to end is better shown by its result alone."""
    done_then, done_now, total = earlier.step or 0, latest.step or 0, latest.total_steps
    elapsed = latest.created_at - earlier.created_at
    if not total or done_now <= done_then or elapsed <= 0:
        return None
    return (total - done_now) * elapsed / (done_now - done_then)


async def show_held(coalescer: ProgressCoalescer[K, T], show: Callable[[K, T], Awaitable[None]]) -> None:
    """Sleep until each held update falls due and `show` it, until nothing is held (run it as a task)."""
    while (due_at := coalescer.next_due()) is not None:
        await asyncio.sleep(max(0.0, due_at - time.monotonic()))
        for key, update in coalescer.due(time.monotonic()):
            await show(key, update)
