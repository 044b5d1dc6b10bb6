"""The contract of the task module's runs: each task's lease (one holder at a time, a new fencing token at each
take-over, writes of a lost lease refused) and its last run, which only the lease holder records.

A subclass provides ``table``: an empty store of task runs on the contract's ``clock`` with a lease time to live
of ``TTL_S``, as ``(leases, runs)``: ``leases(holder)`` gives one process's leases, ``runs`` the log they share.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.pkg.clock import FakeClock
from tidings.task.biz.errors import LeaseLost
from tidings.task.biz.runs import Lease, Run, RunLog
from tidings.task.data.leases import SQLLease, SQLLeases

TTL_S = 30
START_MS = 1_796_569_380_000

Leases = Callable[[str], Callable[[str], Lease]]
Table = tuple[Leases, RunLog]


class TaskRunsContract:
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(START_MS)

    async def test_one_holder_at_a_time_and_release_hands_the_lease_over_at_once(self, table: Table) -> None:
        leases, _ = table
        first, second = leases("a")("retention"), leases("b")("retention")
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.acquire()  # asking again renews it
        await first.release()
        assert await second.acquire()
        assert not await first.acquire()
        assert not await first.renew()

    async def test_an_expired_lease_is_taken_over_and_the_old_holder_can_neither_renew_nor_record(
        self, table: Table, clock: FakeClock
    ) -> None:
        leases, runs = table
        first, second = leases("a")("retention"), leases("b")("retention")
        assert await first.acquire()
        await first.record(Run("retention", START_MS, None, "running"))
        clock.advance(s=TTL_S - 1)
        assert not await second.acquire()  # still held
        assert await first.renew()
        clock.advance(s=TTL_S - 1)
        assert not await second.acquire()  # renewed: held again for the whole time to live
        clock.advance(s=2)
        assert await second.acquire()  # expired: taken over
        with pytest.raises(LeaseLost):
            await first.record(Run("retention", START_MS, clock.now_ms(), "ok", 5))
        assert not await first.renew()
        assert await runs.last_runs(["retention"]) == {"retention": Run("retention", START_MS, None, "running")}
        await second.record(Run("retention", clock.now_ms(), clock.now_ms(), "ok", 2))
        assert (await runs.last_runs(["retention"]))["retention"].items == 2

    async def test_the_holder_renews_its_own_expired_lease_when_nobody_took_it(
        self, table: Table, clock: FakeClock
    ) -> None:
        leases, _ = table
        lease = leases("a")("retention")
        assert await lease.acquire()
        clock.advance(s=TTL_S * 2)
        assert await lease.renew()
        await lease.record(Run("retention", START_MS, clock.now_ms(), "ok"))

    async def test_leases_are_per_task(self, table: Table) -> None:
        leases, _ = table
        assert await leases("a")("retention").acquire()
        assert await leases("b")("stats").acquire()

    async def test_a_task_that_never_ran_has_no_run_even_once_leased(self, table: Table) -> None:
        leases, runs = table
        assert await runs.last_runs(["retention", "stats"]) == {}
        assert await leases("a")("retention").acquire()
        assert await runs.last_runs(["retention", "stats"]) == {}

    async def test_a_run_is_kept_and_the_next_one_replaces_it(self, table: Table) -> None:
        leases, runs = table
        retention, stats = leases("a")("retention"), leases("a")("stats")
        assert await retention.acquire()
        assert await stats.acquire()
        started = Run("retention", 1_000, None, "running")
        await retention.record(started)
        await stats.record(Run("stats", 1_500, 1_600, "ok", 7))
        assert await runs.last_runs(["retention", "stats", "other"]) == {
            "retention": started,
            "stats": Run("stats", 1_500, 1_600, "ok", 7),
        }
        finished = Run("retention", 1_000, 2_000, "error", 3, "RuntimeError('boom')")
        await retention.record(finished)
        assert await runs.last_runs(["retention"]) == {"retention": finished}
        assert set(await runs.last_runs(["stats"])) == {"stats"}

    async def test_a_checkpoint_is_kept_for_the_next_holder_and_only_the_holder_writes_it(
        self, table: Table, clock: FakeClock
    ) -> None:
        leases, _ = table
        first, second = leases("a")("stats"), leases("b")("stats")
        assert await first.acquire()
        assert await first.load_checkpoint() == ""
        await first.save_checkpoint("2026-12-06T15")
        clock.advance(s=TTL_S + 1)
        assert await second.acquire()
        assert await second.load_checkpoint() == "2026-12-06T15"
        with pytest.raises(LeaseLost):
            await first.save_checkpoint("2026-12-06T16")
        await second.save_checkpoint("2026-12-06T17")
        assert await first.load_checkpoint() == "2026-12-06T17"


async def held_lease(engine: AsyncEngine, name: str) -> SQLLease:
    """Task ``name``'s lease, held by a process of its own on ``engine``'s database: for a task's fenced
    repositories in tests."""
    lease = SQLLeases(engine, ttl_s=3600, clock=FakeClock(START_MS)).lease(name)
    assert await lease.acquire()
    return lease
