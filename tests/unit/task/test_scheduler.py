"""The scheduler runs each task once per scheduled time, under the task's lease, across restarts and hand-overs; a run
that loses its lease stops, and the scheduler survives failing jobs and an unreachable store."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.task.fakes import FakeTaskRuns, FakeTokens
from tidings.pkg.clock import FakeClock
from tidings.task.biz.errors import LeaseLost
from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.biz.pruning import Pruning
from tidings.task.biz.runs import Run
from tidings.task.server.scheduler import RunningElsewhere, Scheduler, TaskMetrics
from tidings.task.service.jobs import Job
from tidings.task.service.pruning import REFRESH_TOKEN_RETENTION, pruning_job

# 2026-12-06 15:03:00 UTC
START_MS = 1_796_569_380_000
MINUTE_MS = 60_000


def counting(name: str, schedule: str | None, calls: list[str], result: int = 1) -> Job:
    async def run(_: Progress) -> int:
        calls.append(name)
        return result

    return Job(name, schedule=schedule, run=run)


def scheduler(
    jobs: list[Job], table: FakeTaskRuns, holder: str = "p1", *, renew_s: float = 10.0, tick_s: float = 1.0
) -> tuple[Scheduler, CollectorRegistry]:
    """One task process on the shared ``table``, as ``holder``."""
    registry = CollectorRegistry()
    runner = Scheduler(
        jobs,
        table.leases(holder),
        table.runs,
        TaskMetrics(registry),
        renew_s=renew_s,
        tick_s=tick_s,
        clock=table.clock,
    )
    return runner, registry


async def test_a_task_runs_once_for_each_time_its_schedule_names() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS))
    jobs = [counting("a", "*/10 * * * *", calls), counting("b", "0 * * * *", calls)]
    runner, registry = scheduler(jobs, table)
    assert await runner.tick() == ["a", "b"]  # never ran: at once
    assert await runner.tick() == []
    table.clock.advance(ms=6 * MINUTE_MS)  # 15:09
    assert await runner.tick() == []
    table.clock.advance(ms=MINUTE_MS)  # 15:10
    assert await runner.tick() == ["a"]
    table.clock.advance(ms=50 * MINUTE_MS)  # 16:00
    assert await runner.tick() == ["a", "b"]
    assert await runner.tick() == []
    assert registry.get_sample_value("tidings_task_runs_total", {"task": "a", "outcome": "ok"}) == 3
    assert registry.get_sample_value("tidings_task_items_total", {"task": "b"}) == 2
    assert registry.get_sample_value("tidings_task_period_seconds", {"task": "b"}) == 3600
    assert registry.get_sample_value("tidings_task_running", {"task": "a"}) == 0
    # Each run gave its lease back: another process could run the next one at once.
    assert all(row.lease_until_ms == 0 for row in table.rows.values())


async def test_a_new_process_neither_runs_again_what_ran_nor_skips_what_was_missed() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS))
    first, _ = scheduler([counting("a", "*/10 * * * *", calls)], table, "p1")
    assert await first.tick() == ["a"]  # 15:03
    # The first process dies; another one (its own scheduler, the same table) starts at 15:05.
    table.clock.advance(ms=2 * MINUTE_MS)
    second, _ = scheduler([counting("a", "*/10 * * * *", calls)], table, "p2")
    assert await second.tick() == []
    # It was down across 15:10 and 15:20: the missed time runs once, at 15:25.
    table.clock.advance(ms=20 * MINUTE_MS)
    assert await second.tick() == ["a"]
    assert await second.tick() == []
    assert calls == ["a", "a"]
    run = (await table.runs.last_runs(["a"]))["a"]
    assert (run.outcome, run.started_at_ms) == ("ok", START_MS + 22 * MINUTE_MS)


async def test_two_processes_run_each_scheduled_time_once_whichever_ticks_first() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS))
    processes = [scheduler([counting("a", "*/10 * * * *", calls)], table, holder)[0] for holder in ("p1", "p2")]
    for _ in range(6):  # an hour, both ticking every ten minutes, in turns
        ran = [await process.tick() for process in processes]
        assert sorted(ran) == [[], ["a"]]
        table.clock.advance(ms=10 * MINUTE_MS)
    assert calls == ["a"] * 6


async def test_a_task_whose_lease_another_process_holds_does_not_run_here() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS))
    elsewhere = table.leases("p2").lease("a")
    assert await elsewhere.acquire()
    runner, _ = scheduler([counting("a", "0 * * * *", calls)], table, "p1")
    assert await runner.tick() == []
    with pytest.raises(RunningElsewhere):  # nor may an operator's one-off run go beside it
        await runner.run_now("a")
    await elsewhere.release()
    assert await runner.tick() == ["a"]
    assert calls == ["a"]


async def test_a_failing_or_hanging_job_is_counted_recorded_and_does_not_stop_the_others() -> None:
    calls: list[str] = []

    async def broken(_: Progress) -> int:
        raise RuntimeError("boom")

    async def hangs(_: Progress) -> int:
        await asyncio.sleep(3600)
        return 0

    jobs = [
        Job("broken", schedule="0 * * * *", run=broken),
        Job("hangs", schedule="0 * * * *", run=hangs, timeout_s=0.01),
        counting("fine", "0 * * * *", calls),
    ]
    table = FakeTaskRuns(FakeClock(START_MS))
    runner, registry = scheduler(jobs, table)
    assert await runner.tick() == ["broken", "hangs", "fine"]
    assert calls == ["fine"]
    assert registry.get_sample_value("tidings_task_runs_total", {"task": "broken", "outcome": "error"}) == 1
    assert registry.get_sample_value("tidings_task_runs_total", {"task": "hangs", "outcome": "timeout"}) == 1
    assert registry.get_sample_value("tidings_task_last_success_timestamp_seconds", {"task": "broken"}) is None
    runs = await table.runs.last_runs(["broken", "hangs", "fine"])
    assert (runs["broken"].outcome, runs["broken"].error) == ("error", "RuntimeError('boom')")
    assert runs["hangs"].outcome == "timeout"
    assert runs["fine"].finished_at_ms == START_MS
    # A failed run counts for its scheduled time: tried again at the next one.
    assert await runner.tick() == []


async def test_a_run_left_unfinished_runs_again_once_its_runner_has_lost_the_lease() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS), ttl_s=30)
    # Started at 15:03 by a process that died during it: its lease is still good for 30 s.
    dead = table.leases("p2").lease("a")
    assert await dead.acquire()
    await dead.record(Run("a", START_MS, None, "running"))
    runner, _ = scheduler([counting("a", "0 * * * *", calls)], table, "p1")
    assert await runner.tick() == []  # it may still be running there
    table.clock.advance(s=31)
    assert await runner.tick() == ["a"]  # the lease expired: run again (the task resumes where it stopped)
    assert (await table.runs.last_runs(["a"]))["a"].outcome == "ok"


async def test_a_run_that_loses_its_lease_stops_at_its_next_write_and_leaves_the_record_to_the_new_holder() -> None:
    table = FakeTaskRuns(FakeClock(START_MS), ttl_s=30)
    lease = table.leases("p1").lease("a")
    other = table.leases("p2").lease("a")

    async def paused_past_its_lease(_: Progress) -> int:
        table.clock.advance(s=60)  # frozen (SIGSTOP, a long pause) for twice the lease
        assert await other.acquire()  # another process takes the task over meanwhile
        await other.record(Run("a", table.clock.now_ms(), None, "running"))
        lease.fence()  # its next write checks the fencing token first
        return 1

    runner, registry = scheduler([Job("a", schedule="0 * * * *", run=paused_past_its_lease)], table, "p1")
    assert await runner.tick() == ["a"]
    assert registry.get_sample_value("tidings_task_lease_lost_total", {"task": "a"}) == 1
    assert registry.get_sample_value("tidings_task_runs_total", {"task": "a", "outcome": "lease_lost"}) == 1
    # The new holder's record stands, and its lease too.
    assert (await table.runs.last_runs(["a"]))["a"] == Run("a", START_MS + 60_000, None, "running")
    assert table.rows["a"].holder == "p2"
    assert not await lease.renew()
    with pytest.raises(LeaseLost):
        await lease.record(Run("a", START_MS, None, "ok"))


async def test_a_long_run_keeps_its_lease_by_renewing_it() -> None:
    table = FakeTaskRuns(FakeClock(START_MS), ttl_s=30)
    other = table.leases("p2").lease("a")
    refused: list[bool] = []

    async def long_run(progress: Progress) -> int:
        for _ in range(5):  # two and a half leases long in all
            await asyncio.sleep(0.05)  # renewals happen meanwhile
            table.clock.advance(s=15)
            refused.append(not await other.acquire())
        return 0

    runner, _ = scheduler([Job("a", schedule="0 * * * *", run=long_run)], table, "p1", renew_s=0.01)
    assert await runner.tick() == ["a"]
    assert refused == [True] * 5
    assert (await table.runs.last_runs(["a"]))["a"].outcome == "ok"


async def test_an_unreachable_store_runs_nothing_until_it_answers() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS))
    table.down = True
    runner, _ = scheduler([counting("a", "0 * * * *", calls)], table)
    assert await runner.tick() == []
    assert calls == []
    table.down = False
    assert await runner.tick() == ["a"]


async def test_stop_ends_the_loop() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS))
    runner, _ = scheduler([counting("a", "0 * * * *", calls)], table, tick_s=0.01)
    await runner.start()
    for _ in range(100):
        if calls:
            break
        await asyncio.sleep(0.01)
    await runner.stop()
    assert calls == ["a"]
    assert table.rows["a"].lease_until_ms == 0


async def test_a_long_run_holds_up_no_other_task_and_stop_cuts_it_short() -> None:
    calls: list[str] = []
    release, started = asyncio.Event(), asyncio.Event()

    async def long(_: Progress) -> int:
        started.set()
        await release.wait()
        return 1

    table = FakeTaskRuns(FakeClock(START_MS))
    jobs = [Job("long", schedule="0 * * * *", run=long), counting("quick", "0 * * * *", calls)]
    runner, _ = scheduler(jobs, table, tick_s=0.01)
    await runner.start()
    try:
        async with asyncio.timeout(5):
            await started.wait()
            while not calls:  # noqa: ASYNC110 - the scheduler's loop calls the job: nothing to wait on
                await asyncio.sleep(0.01)
        assert calls == ["quick"]  # while "long" still runs
        assert table.rows["long"].lease_until_ms > 0
    finally:
        await runner.stop()
    run = table.rows["long"].run
    assert run is not None
    assert run.finished_at_ms is None  # cut short by the stop: due again on the next start


@pytest.mark.parametrize(("max_batches", "left"), [(10, 1), (2, 2)])
async def test_pruning_keeps_the_grace_and_deletes_in_bounded_batches(max_batches: int, left: int) -> None:
    tokens = FakeTokens([1_000, 2_000, 3_000, 4_000, 5_000, 10_000])
    retention = Pruning(tokens, lambda: 11_000, keep_s=5, batch=2, max_batches=max_batches)
    job = pruning_job(REFRESH_TOKEN_RETENTION, retention, schedule="17 * * * *")
    pruned = await job.run(NO_PROGRESS)
    assert all(before == 6_000 for before, _ in tokens.calls)
    assert pruned == 6 - left
    assert len(tokens.expiries) == left


async def test_a_task_run_now_is_recorded_like_a_scheduled_one() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS))
    runner, _ = scheduler([counting("a", "0 * * * *", calls, result=4)], table)
    done = await runner.run_now("a")
    assert (done.outcome, done.items, done.started_at_ms) == ("ok", 4, START_MS)
    assert (await table.runs.last_runs(["a"]))["a"] == done
    assert table.rows["a"].lease_until_ms == 0  # given back
    assert await runner.tick() == []  # this hour's run is done
    with pytest.raises(KeyError):
        await runner.run_now("b")
    assert calls == ["a"]


async def test_a_dry_run_counts_what_a_run_would_delete_and_deletes_nothing() -> None:
    tokens = FakeTokens([1_000, 2_000, 3_000, 10_000])
    retention = Pruning(tokens, lambda: 11_000, keep_s=5)
    table = FakeTaskRuns(FakeClock(START_MS))
    runner, _ = scheduler([pruning_job(REFRESH_TOKEN_RETENTION, retention, schedule="17 * * * *")], table)
    assert await runner.preview("refresh-token-retention") == 3
    assert len(tokens.expiries) == 4
    with pytest.raises(ValueError, match="no dry run"):
        await scheduler([counting("a", "0 * * * *", [])], table)[0].preview("a")


async def test_a_task_on_demand_runs_only_when_asked_not_even_to_finish_a_run_cut_short() -> None:
    calls: list[str] = []
    table = FakeTaskRuns(FakeClock(START_MS), ttl_s=30)
    runner, registry = scheduler([counting("a", None, calls), counting("b", "0 * * * *", calls)], table)
    assert await runner.tick() == ["b"]
    [on_demand, scheduled] = await runner.status()
    assert (on_demand.schedule, on_demand.next_at_ms, on_demand.due) == (None, None, False)
    assert scheduled.next_at_ms == START_MS + 57 * MINUTE_MS  # 16:00
    # Its run dies midway (its lease lapses): the scheduler leaves it for an operator to run again.
    dead = table.leases("p2").lease("a")
    assert await dead.acquire()
    await dead.record(Run("a", START_MS, None, "running"))
    table.clock.advance(s=31)
    assert await runner.tick() == []
    assert (await runner.run_now("a")).outcome == "ok"
    assert calls == ["b", "a"]
    # No period, so no alert for it.
    assert registry.get_sample_value("tidings_task_period_seconds", {"task": "a"}) is None
