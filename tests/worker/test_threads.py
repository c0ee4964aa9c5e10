"""How a worker splits its cores, and that the split holds where the work runs: the model in its own thread with its
torch threads, post-processing on its own pool, off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import torch

from core.settings import WorkerSettings
from worker.device import DeviceGuard, Interruption
from worker.threads import PostPool, ThreadPlan, model_executor, plan_threads


def test_a_cpu_worker_gives_the_model_all_cores_but_the_post_processing_ones() -> None:
    settings = WorkerSettings()
    assert plan_threads(settings, "cpu", 1) == ThreadPlan(1, 1, 1)
    assert plan_threads(settings, "cpu", 2) == ThreadPlan(2, 1, 1)
    assert plan_threads(settings, "cpu", 4) == ThreadPlan(4, 3, 1)
    assert plan_threads(settings, "cpu", 16) == ThreadPlan(16, 12, 4)


def test_a_gpu_worker_feeds_the_device_with_few_threads_and_post_processes_with_the_rest() -> None:
    settings = WorkerSettings()
    assert plan_threads(settings, "cuda", 16) == ThreadPlan(16, 4, 4)
    assert plan_threads(settings, "cuda", 2) == ThreadPlan(2, 1, 1)
    assert plan_threads(settings, "remote", 8) == ThreadPlan(8, 0, 8)


def test_settings_override_the_derived_split() -> None:
    settings = WorkerSettings(model_threads=6, post_threads=2)
    assert plan_threads(settings, "cpu", 16) == ThreadPlan(16, 6, 2)
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


def test_a_cpu_worker_takes_turns_on_every_core_when_asked() -> None:
    assert plan_threads(WorkerSettings(), "cpu", 2).turns is False  # the split, by default
    turns = WorkerSettings(cpu_turns=True)
    assert plan_threads(turns, "cpu", 2) == ThreadPlan(2, 2, 2, turns=True)
    assert plan_threads(turns, "cuda", 16).turns is False  # the GPU computes: side by side
    assert "taken in turns" in plan_threads(turns, "cpu", 4).describe()


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _plan_with_turns() -> tuple[PostPool, DeviceGuard]:
    plan = ThreadPlan(cores=2, model=2, post=2, turns=True)
    post = PostPool(plan)
    return post, DeviceGuard(model_executor(plan), post.share)


async def test_post_processing_waits_for_the_models_next_step_and_the_model_for_it() -> None:
    post, guard = _plan_with_turns()
    order: list[str] = []
    in_step, post_asked = threading.Event(), threading.Event()

    def post_task() -> None:
        order.append("post starts")
        threading.Event().wait(0.05)
        order.append("post ends")

    def two_steps(interruption: Interruption) -> int:
        in_step.set()
        assert post_asked.wait(10)
        threading.Event().wait(0.05)  # the rest of the step: the post task must not start meanwhile
        order.append("step 1 ends")
        interruption.check()  # the pause between steps
        order.append("step 2 starts")
        return torch.get_num_threads()

    try:
        call = asyncio.ensure_future(guard.run(two_steps))
        await asyncio.to_thread(in_step.wait, 10)
        task = asyncio.ensure_future(post.run(post_task))
        await asyncio.to_thread(_until, lambda: post.share.post_waiting > 0)
        post_asked.set()
        threads, _ = await asyncio.gather(call, task)
    finally:
        post.close()
    assert order == ["step 1 ends", "post starts", "post ends", "step 2 starts"]
    assert threads == 2  # the model always computes with every core: same sums, same bytes


async def test_a_jobs_post_processing_holds_the_next_model_call_until_it_ends() -> None:
    post, guard = _plan_with_turns()
    started = threading.Event()

    def call(_: Interruption) -> None:
        started.set()

    try:
        with post.share.post_processing():
            running = asyncio.ensure_future(guard.run(call))
            await asyncio.sleep(0.1)
            assert not started.is_set()  # paused before its first step
        await running
        assert started.is_set()
        assert await post.run(lambda: "idle model: no wait") == "idle model: no wait"
    finally:
        post.close()


async def test_without_turns_post_processing_runs_beside_the_model() -> None:
    plan = ThreadPlan(cores=2, model=1, post=1)
    post = PostPool(plan)
    guard = DeviceGuard(model_executor(plan), post.share)
    in_step, post_ran = threading.Event(), threading.Event()

    def step(_: Interruption) -> bool:
        in_step.set()
        return post_ran.wait(10)  # finishes only if the post task ran meanwhile

    try:
        call = asyncio.ensure_future(guard.run(step))
        await asyncio.to_thread(in_step.wait, 10)
        await post.run(post_ran.set)
        assert await call is True
    finally:
        post.close()
