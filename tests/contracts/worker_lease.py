"""The behaviour every ``WorkerLease`` adapter must have; run against SQLite (unit) and MariaDB (integration).

A subclass provides an ``engine`` fixture whose database is migrated and empty.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.pkg.idgen.lease import LeaseLost, SQLWorkerLease


class Clock:
    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class WorkerLeaseContract:
    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    def lease(self, engine: AsyncEngine, owner: str, clock: Clock) -> SQLWorkerLease:
        return SQLWorkerLease(engine, owner, ttl_s=30, clock_ms=clock)

    async def test_live_processes_get_distinct_worker_ids(self, engine: AsyncEngine, clock: Clock) -> None:
        ids = [await self.lease(engine, f"process-{n}", clock).acquire() for n in range(5)]
        assert len(set(ids)) == 5

    async def test_an_expired_lease_is_taken_over_and_its_holder_learns_it(
        self, engine: AsyncEngine, clock: Clock
    ) -> None:
        crashed = self.lease(engine, "crashed", clock)
        worker_id = await crashed.acquire()
        clock.now_ms += 31_000
        successor = self.lease(engine, "successor", clock)
        assert await successor.acquire() == worker_id
        with pytest.raises(LeaseLost):
            await crashed.renew(worker_id)

    async def test_renewal_keeps_the_id_from_others(self, engine: AsyncEngine, clock: Clock) -> None:
        holder = self.lease(engine, "holder", clock)
        worker_id = await holder.acquire()
        clock.now_ms += 20_000
        await holder.renew(worker_id)
        clock.now_ms += 20_000  # 40 s after the first grant, 20 s after the renewal: still held
        assert await self.lease(engine, "other", clock).acquire() != worker_id

    async def test_a_released_id_is_free_at_once(self, engine: AsyncEngine, clock: Clock) -> None:
        holder = self.lease(engine, "holder", clock)
        worker_id = await holder.acquire()
        await holder.release(worker_id)
        assert await self.lease(engine, "next", clock).acquire() == worker_id
