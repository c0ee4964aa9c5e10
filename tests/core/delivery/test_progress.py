"""The progress coalescer: at most one update per interval per message, the latest step, nothing after the end."""

from __future__ import annotations

import pytest

from core.delivery.progress import ProgressCoalescer, keep_live_preview, seconds_left
from core.models.request import Platform, Requester
from core.models.result import EventKind, ResultEvent

ALICE = Requester(platform=Platform.TELEGRAM, user_id="1", chat_id="1")


def progress_event(step: int, preview: str | None = None, at: float = 0.0) -> ResultEvent:
    return ResultEvent(
        kind=EventKind.PROGRESS,
        request_id="r1",
        requester=ALICE,
        step=step,
        total_steps=8,
        live_preview=preview,
        created_at=at,
    )


def test_the_first_update_shows_at_once_and_a_burst_becomes_its_latest_step() -> None:
    progress: ProgressCoalescer[str, str] = ProgressCoalescer(4.0)
    assert progress.offer("a", "started", now=100.0) == "started"
    assert progress.next_due() is None
    for step in range(1, 9):
        assert progress.offer("a", f"step {step}", now=100.0 + step * 0.1) is None
    assert progress.next_due() == 104.0
    assert progress.due(now=103.9) == []  # not yet: one update per interval
    assert progress.due(now=104.0) == [("a", "step 8")]  # the latest, once
    assert progress.due(now=200.0) == []
    assert progress.next_due() is None


def test_the_interval_counts_from_the_last_update_shown() -> None:
    progress: ProgressCoalescer[str, int] = ProgressCoalescer(2.0)
    assert progress.offer("a", 1, now=0.0) == 1
    assert progress.offer("a", 2, now=1.0) is None
    assert progress.due(now=2.5) == [("a", 2)]  # shown late (the caller's timer), so the next waits until 4.5
    assert progress.offer("a", 3, now=3.0) is None
    assert progress.next_due() == 4.5
    assert progress.offer("a", 4, now=4.6) == 4  # the interval is over: shown at once, replacing 3
    assert progress.due(now=10.0) == []


def test_messages_are_limited_each_on_their_own() -> None:
    progress: ProgressCoalescer[str, str] = ProgressCoalescer(1.0)
    assert progress.offer("a", "a1", now=0.0) == "a1"
    assert progress.offer("b", "b1", now=0.1) == "b1"
    assert progress.offer("a", "a2", now=0.2) is None
    assert progress.offer("b", "b2", now=0.3) is None
    assert progress.next_due() == 1.0
    assert progress.due(now=1.05) == [("a", "a2")]
    assert progress.due(now=1.1) == [("b", "b2")]


def test_nothing_is_shown_after_the_end_not_even_what_was_held() -> None:
    progress: ProgressCoalescer[str, str] = ProgressCoalescer(1.0)
    progress.offer("a", "started", now=0.0)
    assert progress.offer("a", "80%", now=0.5) is None
    progress.end("a")
    assert progress.ended("a")
    assert progress.due(now=5.0) == []
    assert progress.next_due() is None
    assert progress.offer("a", "a late 90%", now=6.0) is None  # a late event after the result
    assert progress.offer("b", "b starts", now=6.0) == "b starts"  # other requests are untouched


def test_an_interval_of_zero_shows_everything() -> None:
    progress: ProgressCoalescer[str, int] = ProgressCoalescer(0.0)
    assert [progress.offer("a", step, now=1.0) for step in range(3)] == [0, 1, 2]


def test_memory_is_bounded_by_what_is_in_flight() -> None:
    progress: ProgressCoalescer[int, str] = ProgressCoalescer(1.0, ended_remembered=100)
    for request in range(10_000):
        progress.offer(request, "started", now=request * 0.01)
    assert len(progress) <= 101  # only those shown within the last interval
    for request in range(10_000):
        progress.end(request)
    assert len(progress) == 0
    assert not progress.ended(0) and progress.ended(9_999)  # only the latest ended keys are remembered


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        ProgressCoalescer(-1.0)


def test_a_held_live_preview_survives_a_newer_step_without_one() -> None:
    progress: ProgressCoalescer[str, ResultEvent] = ProgressCoalescer(2.0, merge=keep_live_preview)
    assert progress.offer("r1", progress_event(1), now=0.0) is not None
    red, blue = "data:image/jpeg;base64,cmVk", "data:image/jpeg;base64,Ymx1ZQ=="
    progress.offer("r1", progress_event(2, red), now=0.5)
    progress.offer("r1", progress_event(3), now=1.0)  # a step alone: the picture stays
    [(_, shown)] = progress.due(now=2.0)
    assert (shown.step, shown.live_preview) == (3, red)
    progress.offer("r1", progress_event(4, red), now=2.5)
    progress.offer("r1", progress_event(5, blue), now=3.0)  # a newer picture replaces the held one
    [(_, shown)] = progress.due(now=4.0)
    assert (shown.step, shown.live_preview) == (5, blue)
    progress.offer("r1", progress_event(7), now=4.5)
    progress.offer(
        "r1", progress_event(6, red), now=5.0
    )  # a picture checked after a later step: no step back
    [(_, shown)] = progress.due(now=6.0)
    assert (shown.step, shown.live_preview) == (7, red)


def test_the_interval_counts_from_when_the_edit_landed() -> None:
    """A platform's rate limit may hold an edit back: the next one waits a full interval after it landed."""
    progress: ProgressCoalescer[str, int] = ProgressCoalescer(2.0)
    assert progress.offer("a", 1, now=0.0) == 1
    progress.landed("a", 1.5)  # the edit waited for the chat's turn
    assert progress.offer("a", 2, now=2.0) is None  # 2 s after the offer, but not after the edit
    assert progress.next_due() == 3.5
    assert progress.due(now=3.5) == [("a", 2)]
    progress.end("a")
    progress.landed("a", 4.0)  # an edit that lands after the end does not bring the key back
    assert len(progress) == 0 and progress.offer("a", 3, now=10.0) is None


def test_the_time_left_follows_the_renders_pace_by_the_workers_clock() -> None:
    started = progress_event(0, at=100.0).model_copy(update={"kind": EventKind.STARTED, "step": None})
    assert seconds_left(started, progress_event(2, at=104.0)) == 12.0  # 2 steps in 4 s: 6 more in 12 s
    assert seconds_left(progress_event(2, at=104.0), progress_event(6, at=106.0)) == 1.0
    assert seconds_left(progress_event(2, at=104.0), progress_event(2, at=105.0)) is None  # no step between
    assert seconds_left(progress_event(2, at=104.0), progress_event(4, at=104.0)) is None  # no time between
