"""The scheduler runs each task once per scheduled time, only while this process is the runner, across restarts and
hand-overs, and survives failing jobs, lock stores and run logs."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.task.fakes import FakeRunLog, FakeTokens
from tidings.pkg.clock import FakeClock
from tidings.task.biz.retention import RefreshTokenRetention
from tidings.task.biz.runs import Run
from tidings.task.server.scheduler import NotTheRunner, Scheduler, TaskMetrics
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


# 2026-12-06 15:03:00 UTC
START_MS = 1_796_569_380_000
MINUTE_MS = 60_000


def counting(name: str, schedule: str, calls: list[str], result: int = 1) -> Job:
    async def run() -> int:
        calls.append(name)
        return result

    return Job(name, schedule=schedule, run=run)


def scheduler(
    jobs: list[Job], leadership: FakeLeadership, clock: FakeClock, runs: FakeRunLog | None = None
) -> tuple[Scheduler, CollectorRegistry]:
    registry = CollectorRegistry()
    return Scheduler(jobs, leadership, runs or FakeRunLog(), TaskMetrics(registry), clock=clock), registry


async def test_a_task_runs_once_for_each_time_its_schedule_names() -> None:
    calls: list[str] = []
    clock = FakeClock(START_MS)
    jobs = [counting("a", "*/10 * * * *", calls), counting("b", "0 * * * *", calls)]
    runner, registry = scheduler(jobs, FakeLeadership(), clock)
    assert await runner.tick() == ["a", "b"]  # never ran: at once
    assert await runner.tick() == []
    clock.advance(ms=6 * MINUTE_MS)  # 15:09
    assert await runner.tick() == []
    clock.advance(ms=MINUTE_MS)  # 15:10
    assert await runner.tick() == ["a"]
    clock.advance(ms=50 * MINUTE_MS)  # 16:00
    assert await runner.tick() == ["a", "b"]
    assert await runner.tick() == []
    assert registry.get_sample_value("tidings_task_runs_total", {"task": "a", "outcome": "ok"}) == 3
    assert registry.get_sample_value("tidings_task_items_total", {"task": "b"}) == 2
    assert registry.get_sample_value("tidings_task_period_seconds", {"task": "b"}) == 3600


async def test_a_new_runner_neither_runs_again_what_ran_nor_skips_what_was_missed() -> None:
    calls: list[str] = []
    clock, runs = FakeClock(START_MS), FakeRunLog()
    first, _ = scheduler([counting("a", "*/10 * * * *", calls)], FakeLeadership(), clock, runs)
    assert await first.tick() == ["a"]  # 15:03
    # The first runner dies; another process (its own scheduler, the same log) takes over at 15:05.
    clock.advance(ms=2 * MINUTE_MS)
    second, _ = scheduler([counting("a", "*/10 * * * *", calls)], FakeLeadership(), clock, runs)
    assert await second.tick() == []
    # It was down across 15:10 and 15:20: the missed time runs once, at 15:25.
    clock.advance(ms=20 * MINUTE_MS)
    assert await second.tick() == ["a"]
    assert await second.tick() == []
    assert calls == ["a", "a"]
    assert runs.runs["a"].outcome == "ok"
    assert runs.runs["a"].started_at_ms == START_MS + 22 * MINUTE_MS


async def test_a_process_that_is_not_the_runner_runs_nothing_and_reads_the_runs_when_it_takes_over() -> None:
    calls: list[str] = []
    clock, runs = FakeClock(START_MS), FakeRunLog()
    leadership = FakeLeadership()
    leadership.leader = False
    runner, registry = scheduler([counting("a", "0 * * * *", calls)], leadership, clock, runs)
    assert await runner.tick() == []
    assert registry.get_sample_value("tidings_task_leader") == 0
    leadership.leader = True
    assert await runner.tick() == ["a"]
    assert registry.get_sample_value("tidings_task_leader") == 1
    # Losing the role and taking it back within the hour: the log says it ran, so it does not run again...
    leadership.leader = False
    await runner.tick()
    leadership.leader = True
    assert await runner.tick() == []
    # ...unless the other runner's record says otherwise: it reads the log again on taking over.
    leadership.leader = False
    await runner.tick()
    del runs.runs["a"]
    leadership.leader = True
    assert await runner.tick() == ["a"]
    assert calls == ["a", "a"]


async def test_a_failing_or_hanging_job_is_counted_recorded_and_does_not_stop_the_others() -> None:
    calls: list[str] = []

    async def broken() -> int:
        raise RuntimeError("boom")

    async def hangs() -> int:
        await asyncio.sleep(3600)
        return 0

    jobs = [
        Job("broken", schedule="0 * * * *", run=broken),
        Job("hangs", schedule="0 * * * *", run=hangs, timeout_s=0.01),
        counting("fine", "0 * * * *", calls),
    ]
    runs = FakeRunLog()
    runner, registry = scheduler(jobs, FakeLeadership(), FakeClock(START_MS), runs)
    assert await runner.tick() == ["broken", "hangs", "fine"]
    assert calls == ["fine"]
    assert registry.get_sample_value("tidings_task_runs_total", {"task": "broken", "outcome": "error"}) == 1
    assert registry.get_sample_value("tidings_task_runs_total", {"task": "hangs", "outcome": "timeout"}) == 1
    assert registry.get_sample_value("tidings_task_last_success_timestamp_seconds", {"task": "broken"}) is None
    assert (runs.runs["broken"].outcome, runs.runs["broken"].error) == ("error", "RuntimeError('boom')")
    assert runs.runs["hangs"].outcome == "timeout"
    assert runs.runs["fine"].finished_at_ms == START_MS
    # A failed run counts for its scheduled time: tried again at the next one.
    assert await runner.tick() == []


async def test_a_run_whose_process_died_runs_again_once_its_timeout_has_passed() -> None:
    calls: list[str] = []
    clock, runs = FakeClock(START_MS), FakeRunLog()
    # Started at 15:00 by a process that died during it: never finished.
    runs.runs["a"] = Run("a", START_MS - 3 * MINUTE_MS, None, "running")
    job = Job("a", schedule="0 * * * *", run=counting("a", "0 * * * *", calls).run, timeout_s=300)
    runner, _ = scheduler([job], FakeLeadership(), clock, runs)
    assert await runner.tick() == []  # 15:03: it may still be running somewhere
    clock.advance(ms=3 * MINUTE_MS)  # 15:06: past its 5 minutes
    assert await runner.tick() == ["a"]
    assert runs.runs["a"].outcome == "ok"


async def test_an_unreachable_lock_store_means_not_the_runner_until_it_answers() -> None:
    calls: list[str] = []
    leadership = FakeLeadership()
    leadership.down = True
    runner, _ = scheduler([counting("a", "0 * * * *", calls)], leadership, FakeClock(START_MS))
    assert await runner.tick() == []
    leadership.down = False
    assert await runner.tick() == ["a"]


async def test_an_unreachable_run_log_runs_nothing_rather_than_twice() -> None:
    calls: list[str] = []
    runs = FakeRunLog()
    runs.down = True
    runner, _ = scheduler([counting("a", "0 * * * *", calls)], FakeLeadership(), FakeClock(START_MS), runs)
    assert await runner.tick() == []
    assert calls == []
    runs.down = False
    assert await runner.tick() == ["a"]


async def test_stop_ends_the_loop_and_gives_up_the_role() -> None:
    calls: list[str] = []
    leadership = FakeLeadership()
    runner = Scheduler(
        [counting("a", "0 * * * *", calls)], leadership, FakeRunLog(), TaskMetrics(CollectorRegistry()), tick_s=0.01
    )
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
    job = refresh_token_retention(retention, schedule="17 * * * *")
    pruned = await job.run()
    assert all(before == 6_000 for before, _ in tokens.calls)
    assert pruned == 6 - left
    assert len(tokens.expiries) == left


async def test_a_task_run_now_is_recorded_like_a_scheduled_one_and_refused_while_another_process_runs_them() -> None:
    calls: list[str] = []
    clock, runs = FakeClock(START_MS), FakeRunLog()
    leadership = FakeLeadership()
    runner, _ = scheduler([counting("a", "0 * * * *", calls, result=4)], leadership, clock, runs)
    done = await runner.run_now("a")
    assert (done.outcome, done.items, done.started_at_ms) == ("ok", 4, START_MS)
    assert runs.runs["a"] == done
    assert leadership.released == 1  # a one-off run gives the role back
    assert await runner.tick() == []  # this hour's run is done
    leadership.leader = False
    with pytest.raises(NotTheRunner):
        await runner.run_now("a")
    with pytest.raises(KeyError):
        await runner.run_now("b")
    assert calls == ["a"]


async def test_a_dry_run_counts_what_a_run_would_delete_and_deletes_nothing() -> None:
    tokens = FakeTokens([1_000, 2_000, 3_000, 10_000])
    retention = RefreshTokenRetention(tokens, lambda: 11_000, grace_s=5)
    runner, _ = scheduler(
        [refresh_token_retention(retention, schedule="17 * * * *")], FakeLeadership(), FakeClock(START_MS)
    )
    assert await runner.preview("refresh-token-retention") == 3
    assert len(tokens.expiries) == 4
    with pytest.raises(ValueError, match="no dry run"):
        await scheduler([counting("a", "0 * * * *", [])], FakeLeadership(), FakeClock(START_MS))[0].preview("a")
