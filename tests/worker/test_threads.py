"""How a worker splits its cores, and that the split holds where the work runs: the model in its own thread with its
torch threads, post-processing on its own pool, off the event loop."""

from __future__ import annotations

import asyncio
import threading

import torch

from core.settings import WorkerSettings
from worker.device import DeviceGuard, Interruption
from worker.threads import PostPool, ThreadPlan, model_executor, plan_threads


def test_a_cpu_worker_gives_the_model_all_cores_but_the_post_processing_ones() -> None:
    settings = WorkerSettings()
    assert plan_threads(settings, "cpu", 1) == ThreadPlan(1, 1, 1)
    assert plan_threads(settings, "cpu", 2) == ThreadPlan(2, 1, 1, lend=True)
    assert plan_threads(settings, "cpu", 4) == ThreadPlan(4, 3, 1, lend=True)
    assert plan_threads(settings, "cpu", 16) == ThreadPlan(16, 12, 4, lend=True)


def test_a_gpu_worker_feeds_the_device_with_few_threads_and_post_processes_with_the_rest() -> None:
    settings = WorkerSettings()
    assert plan_threads(settings, "cuda", 16) == ThreadPlan(16, 4, 4)
    assert plan_threads(settings, "cuda", 2) == ThreadPlan(2, 1, 1)
    assert plan_threads(settings, "remote", 8) == ThreadPlan(8, 0, 8)


def test_settings_override_the_derived_split() -> None:
    settings = WorkerSettings(model_threads=6, post_threads=2)
    assert plan_threads(settings, "cpu", 16) == ThreadPlan(16, 6, 2, lend=True)
    assert "model 6 thread(s), post-processing 2" in plan_threads(settings, "cpu", 16).describe()


def test_the_model_thread_runs_with_the_plans_torch_threads() -> None:
    plan = ThreadPlan(cores=4, model=3, post=1)
    executor = model_executor(plan)
    try:
        seen = executor.submit(lambda: (torch.get_num_threads(), threading.current_thread().name)).result()
    finally:
        executor.shutdown()
    assert seen[0] == 3
    assert seen[1].startswith("model")


async def test_post_processing_runs_on_its_own_bounded_pool() -> None:
    pool = PostPool(ThreadPlan(cores=2, model=1, post=1))
    running = 0
    most = 0
    lock = threading.Lock()

    def task() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.02)
        with lock:
            running -= 1
        return threading.current_thread().name

    try:
        names = await asyncio.gather(*(pool.run(task) for _ in range(6)))
    finally:
        pool.close()
    assert most == 1  # one post thread: tasks queue instead of piling onto the model's core
    assert all(name.startswith("post") for name in names)


def test_only_a_cpu_worker_lends_its_post_cores_to_the_model() -> None:
    assert plan_threads(WorkerSettings(), "cpu", 1).lend is False  # one core: nothing to lend
    assert plan_threads(WorkerSettings(), "cuda", 16).lend is False
    assert plan_threads(WorkerSettings(lend_idle_cores=False), "cpu", 4).lend is False
    assert (
        plan_threads(WorkerSettings(model_threads=4, post_threads=2), "cpu", 4).lend is False
    )  # already over
    assert "lent to the model while idle (up to 4)" in plan_threads(WorkerSettings(), "cpu", 4).describe()


async def test_the_model_borrows_the_post_cores_while_no_post_processing_runs() -> None:
    plan = ThreadPlan(cores=2, model=1, post=1, lend=True)
    post = PostPool(plan)
    guard = DeviceGuard(model_executor(plan), post.share.adjust)
    post_started, release_post, step_two = threading.Event(), threading.Event(), threading.Event()

    def hold_the_post_core() -> None:
        post_started.set()
        release_post.wait(10)

    def two_steps(interruption: Interruption) -> tuple[int, int]:
        first = torch.get_num_threads()  # the call began with the post core idle
        step_two.set()
        assert post_started.wait(10)
        interruption.check()  # the next step: post-processing runs now
        return first, torch.get_num_threads()

    try:
        call = asyncio.ensure_future(guard.run(two_steps))
        await asyncio.to_thread(step_two.wait, 10)
        held = asyncio.ensure_future(post.run(hold_the_post_core))
        assert await call == (2, 1)  # borrowed at the start, given back at the next step
        assert (
            await guard.run(lambda _: torch.get_num_threads()) == 1
        )  # still busy: the model keeps to its core
        release_post.set()
        await held
        assert await guard.run(lambda _: torch.get_num_threads()) == 2  # idle again: borrowed again
        with post.share.post_processing():  # a job's post-processing, between two of its tasks
            assert await guard.run(lambda _: torch.get_num_threads()) == 1
    finally:
        release_post.set()
        post.close()


async def test_without_lending_the_model_keeps_to_its_own_cores() -> None:
    plan = ThreadPlan(cores=2, model=1, post=1, lend=False)
    post = PostPool(plan)
    guard = DeviceGuard(model_executor(plan), post.share.adjust)
    try:
        assert await guard.run(lambda _: torch.get_num_threads()) == 1
    finally:
        post.close()
