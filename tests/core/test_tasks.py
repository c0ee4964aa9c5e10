"""Stopping tasks without losing the stopper's own cancellation; shutdown steps that a cancel cannot cut short."""

from __future__ import annotations

import asyncio

import pytest

from core.tasks import cancel_and_wait, to_the_end


class Worker:
    """A background task that needs a moment to clean up once cancelled."""

    def __init__(self) -> None:
        self.cleaning = asyncio.Event()
        self.may_finish = asyncio.Event()
        self.cleaned = False

    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cleaning.set()
            await self.may_finish.wait()
            self.cleaned = True
            raise


async def test_stopping_a_task_ends_it_and_goes_on() -> None:
    worker = Worker()
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0)
    worker.may_finish.set()
    await cancel_and_wait(task)  # its CancelledError is not ours
    assert task.cancelled() and worker.cleaned


async def test_a_stopper_cancelled_while_it_waits_is_cancelled_once_the_task_has_ended() -> None:
    """The hole in `task.cancel(); suppress(CancelledError): await task`: the stopper's cancel was swallowed."""
    worker = Worker()
    task = asyncio.create_task(worker.run())
    after: list[str] = []

    async def stopper() -> None:
        await cancel_and_wait(task)
        after.append("went on as if nobody had cancelled it")

    stopping = asyncio.create_task(stopper())
    await worker.cleaning.wait()
    stopping.cancel()  # lands while it waits for the task (the cancel reaches the task too)
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert task.done() and after == []  # it stopped, as it was told


async def test_the_errors_of_a_stopped_task_reach_the_stopper() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait(task)


async def test_a_shutdown_step_runs_to_its_end_through_cancels_then_the_cancel_is_raised() -> None:
    steps: list[str] = []
    go_on = asyncio.Event()

    async def shutdown() -> None:
        steps.append("stop polling")
        await go_on.wait()
        steps.append("close the client")

    running = asyncio.create_task(to_the_end(shutdown()))
    await asyncio.sleep(0)
    running.cancel()  # a SIGTERM…
    await asyncio.sleep(0)
    running.cancel()  # …and another
    await asyncio.sleep(0.01)
    assert not running.done()
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert steps == ["stop polling", "close the client"]


async def test_an_uncancelled_shutdown_step_returns_its_result() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await to_the_end(answer()) == 42
