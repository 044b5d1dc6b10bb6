"""The scheduler runs due jobs only while this process is the runner, and survives failing jobs and lock stores."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.task.fakes import FakeTokens
from tidings.task.biz.retention import RefreshTokenRetention
from tidings.task.server.scheduler import Scheduler, TaskMetrics
from tidings.task.service.jobs import Job
from tidings.task.service.retention import refresh_token_retention


class FakeLeadership:
    def __init__(self) -> None:
        self.leader = True
        self.down = False
        self.released = 0

    async def hold(self) -> bool:
        if self.down:
            raise ConnectionError("database unreachable")
        return self.leader

    async def release(self) -> None:
        self.released += 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counting(name: str, every_s: float, calls: list[str], result: int = 1) -> Job:
    async def run() -> int:
        calls.append(name)
        return result

    return Job(name, every_s=every_s, run=run)


def scheduler(jobs: list[Job], leadership: FakeLeadership, clock: Clock) -> tuple[Scheduler, CollectorRegistry]:
    registry = CollectorRegistry()
    return Scheduler(jobs, leadership, TaskMetrics(registry), jitter=0, clock=clock), registry


async def test_jobs_run_at_once_then_on_their_intervals() -> None:
    calls: list[str] = []
    clock = Clock()
    runner, registry = scheduler([counting("a", 10, calls), counting("b", 30, calls)], FakeLeadership(), clock)
    assert await runner.tick() == ["a", "b"]
    assert await runner.tick() == []
    clock.now += 10
    assert await runner.tick() == ["a"]
    clock.now += 20
    assert await runner.tick() == ["a", "b"]
    assert registry.get_sample_value("tidings_task_runs_total", {"job": "a", "outcome": "ok"}) == 3
    assert registry.get_sample_value("tidings_task_items_total", {"job": "b"}) == 2


async def test_a_process_that_is_not_the_runner_runs_nothing_and_runs_all_when_it_takes_over() -> None:
    calls: list[str] = []
    clock = Clock()
    leadership = FakeLeadership()
    leadership.leader = False
    runner, registry = scheduler([counting("a", 3600, calls)], leadership, clock)
    assert await runner.tick() == []
    assert registry.get_sample_value("tidings_task_leader") == 0
    leadership.leader = True
    assert await runner.tick() == ["a"]
    assert registry.get_sample_value("tidings_task_leader") == 1
    # Losing the role and taking it back runs the job again at once: the other runner may not have run it.
    leadership.leader = False
    await runner.tick()
    leadership.leader = True
    assert await runner.tick() == ["a"]
    assert calls == ["a", "a"]


async def test_a_failing_or_hanging_job_is_counted_and_does_not_stop_the_others() -> None:
    calls: list[str] = []

    async def broken() -> int:
        raise RuntimeError("boom")

    async def hangs() -> int:
        await asyncio.sleep(3600)
        return 0

    jobs = [
        Job("broken", every_s=10, run=broken),
        Job("hangs", every_s=10, run=hangs, timeout_s=0.01),
        counting("fine", 10, calls),
    ]
    runner, registry = scheduler(jobs, FakeLeadership(), Clock())
    assert await runner.tick() == ["broken", "hangs", "fine"]
    assert calls == ["fine"]
    assert registry.get_sample_value("tidings_task_runs_total", {"job": "broken", "outcome": "error"}) == 1
    assert registry.get_sample_value("tidings_task_runs_total", {"job": "hangs", "outcome": "timeout"}) == 1
    assert registry.get_sample_value("tidings_task_last_success_timestamp_seconds", {"job": "broken"}) is None


async def test_an_unreachable_lock_store_means_not_the_runner_until_it_answers() -> None:
    calls: list[str] = []
    leadership = FakeLeadership()
    leadership.down = True
    runner, _ = scheduler([counting("a", 10, calls)], leadership, Clock())
    assert await runner.tick() == []
    leadership.down = False
    assert await runner.tick() == ["a"]


async def test_stop_ends_the_loop_and_gives_up_the_role() -> None:
    calls: list[str] = []
    leadership = FakeLeadership()
    runner = Scheduler([counting("a", 3600, calls)], leadership, TaskMetrics(CollectorRegistry()), tick_s=0.01)
    await runner.start()
    for _ in range(100):
        if calls:
            break
        await asyncio.sleep(0.01)
    await runner.stop()
    assert calls == ["a"]
    assert leadership.released == 1


@pytest.mark.parametrize(("max_batches", "left"), [(10, 1), (2, 2)])
async def test_retention_keeps_the_grace_and_prunes_in_bounded_batches(max_batches: int, left: int) -> None:
    tokens = FakeTokens([1_000, 2_000, 3_000, 4_000, 5_000, 10_000])
    retention = RefreshTokenRetention(tokens, lambda: 11_000, grace_s=5, batch=2, max_batches=max_batches)
    job = refresh_token_retention(retention, every_s=60)
    pruned = await job.run()
    assert all(before == 6_000 for before, _ in tokens.calls)
    assert pruned == 6 - left
    assert len(tokens.expiries) == left
