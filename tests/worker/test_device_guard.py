"""The device guard: one model call at a time, held until its thread really ends, and asked to stop at a step.

Real threads with blocking calls stand in for the pipeline here; the pipeline itself is tested in
test_diffusers_backend.py and test_time_limit.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from core.errors import TimeLimitExceeded
from worker.device import DeviceGuard, Interruption, RenderInterrupted


class Clock:
    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def test_an_interruption_stops_a_call_only_past_its_deadline_and_says_which_limit() -> None:
    clock = Clock()
    interruption = Interruption(120, clock)

    clock.value += 119.9
    interruption.check()  # still within its time
    clock.value += 0.1
    with pytest.raises(TimeLimitExceeded) as exceeded:
        interruption.check()

    assert exceeded.value.limit_s == 120
    assert exceeded.value.reason_code == "time_limit"
    assert "took longer than the 120 s limit" in exceeded.value.message
    assert "fewer images" in exceeded.value.message and "fewer steps" in exceeded.value.message


def test_a_cancelled_interruption_stops_at_once_and_no_limit_never_expires() -> None:
    clock = Clock()
    interruption = Interruption(None, clock)
    clock.value += 10**9
    interruption.check()

    interruption.cancel()
    with pytest.raises(RenderInterrupted):
        interruption.check()


async def test_the_device_stays_held_while_a_cancelled_calls_thread_still_runs() -> None:
    guard = DeviceGuard()
    release = threading.Event()
    order: list[str] = []
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    def stubborn(interruption: Interruption) -> str:  # a model call that never looks at its interruption
        order.append("first started")
        loop.call_soon_threadsafe(started.set)
        release.wait(10)
        order.append("first ended")
        return "first"

    def second_call(interruption: Interruption) -> str:
        order.append("second started")
        return "second"

    first = asyncio.create_task(guard.run(stubborn))
    await started.wait()
    first.cancel()  # what a job timeout does
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(guard.run(second_call))
    await asyncio.sleep(0.2)

    assert guard.busy  # the timed-out job is gone, its thread is not
    assert order == ["first started"]  # so the next job's call has not started
    release.set()
    assert await second == "second"
    assert order == ["first started", "first ended", "second started"]
    assert not guard.busy


async def test_a_cancelled_call_is_asked_to_stop_and_frees_the_device_at_its_next_step() -> None:
    guard = DeviceGuard()
    steps: list[float] = []
    ended: list[float] = []
    loop = asyncio.get_running_loop()
    two_steps = asyncio.Event()

    def cooperative(interruption: Interruption) -> None:  # checks between "steps" of 20 ms, like the pipeline
        try:
            for _ in range(500):
                time.sleep(0.02)
                steps.append(time.monotonic())
                if len(steps) == 2:
                    loop.call_soon_threadsafe(two_steps.set)
                interruption.check()
        finally:
            ended.append(time.monotonic())

    running = asyncio.create_task(guard.run(cooperative))
    await two_steps.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    cancelled_at = time.monotonic()  # the call has been asked to stop by now
    await guard.run(lambda interruption: None)  # the device is free again…

    assert ended  # …because the cancelled call's thread has ended
    assert len(steps) < 500
    # It stopped at the end of the step it was in: at most one more step ended after it was asked.
    assert len([moment for moment in steps if moment > cancelled_at]) <= 1


async def test_a_call_past_its_limit_ends_with_time_limit_exceeded_and_frees_the_device() -> None:
    guard = DeviceGuard()
    steps = 0

    def cooperative(interruption: Interruption) -> None:
        nonlocal steps
        for _ in range(500):
            time.sleep(0.02)
            steps += 1
            interruption.check()

    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match=r"took longer than the 0\.2 s limit"):
        await guard.run(cooperative, limit_s=0.2)

    assert 0.2 <= time.monotonic() - started < 2.0
    assert steps < 500
    assert not guard.busy
    assert await guard.run(lambda interruption: "next") == "next"


async def test_the_time_limit_starts_when_the_device_is_free_not_while_waiting_for_it() -> None:
    guard = DeviceGuard()
    waited: list[float] = []

    def slow(interruption: Interruption) -> None:
        time.sleep(0.5)

    def quick_with_a_short_limit(interruption: Interruption) -> str:
        waited.append(time.monotonic())
        interruption.check()  # 0.3 s after it got the device, not 0.3 s after it asked
        return "rendered"

    asked = time.monotonic()
    results = await asyncio.gather(guard.run(slow), guard.run(quick_with_a_short_limit, limit_s=0.3))

    assert results[1] == "rendered"
    assert waited[0] - asked >= 0.4
