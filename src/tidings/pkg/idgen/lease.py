"""Leasing a snowflake worker id from the database, so no two live processes share one.

A process takes a free or expired row of ``worker_leases`` with a conditional write, renews it well before it
expires, and gives it back on a clean stop. A crashed process's id comes free after the TTL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.pkg.clock import wall_ms
from tidings.pkg.idgen.snowflake import MAX_WORKER_ID
from tidings.pkg.idgen.tables import worker_leases


class LeaseLost(RuntimeError):
    """Another process holds our worker id now: generating more ids could collide."""


class NoWorkerIdFree(RuntimeError):
    """Every worker id is held by a live lease."""


class WorkerLease(Protocol):
    async def acquire(self) -> int: ...
    async def renew(self, worker_id: int) -> None: ...
    async def release(self, worker_id: int) -> None: ...


class SQLWorkerLease:
    """``WorkerLease`` on the ``worker_leases`` table (SQLite or MySQL)."""

    def __init__(
        self,
        engine: AsyncEngine,
        owner: str,
        ttl_s: float,
        *,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._engine = engine
        self._owner = owner
        self._ttl_ms = int(ttl_s * 1000)
        self._clock_ms = clock_ms

    async def acquire(self) -> int:
        # Each attempt either wins a row or learns that someone else just did; 3 passes bound the races.
        for _ in range(3):
            now = self._clock_ms()
            async with self._engine.connect() as conn:
                rows = (await conn.execute(select(worker_leases.c.worker_id, worker_leases.c.expires_at_ms))).all()
            held = {row.worker_id for row in rows if row.expires_at_ms > now}
            known = {row.worker_id for row in rows}
            for worker_id in range(MAX_WORKER_ID + 1):
                if worker_id in held:
                    continue
                if await self._claim(worker_id, now, exists=worker_id in known):
                    return worker_id
        raise NoWorkerIdFree(f"all {MAX_WORKER_ID + 1} worker ids are leased")

    async def _claim(self, worker_id: int, now: int, *, exists: bool) -> bool:
        expires = now + self._ttl_ms
        async with self._engine.begin() as conn:
            if not exists:
                try:
                    await conn.execute(
                        insert(worker_leases).values(worker_id=worker_id, owner=self._owner, expires_at_ms=expires)
                    )
                except IntegrityError:
                    return False
                return True
            result = await conn.execute(
                update(worker_leases)
                .where(worker_leases.c.worker_id == worker_id, worker_leases.c.expires_at_ms <= now)
                .values(owner=self._owner, expires_at_ms=expires)
            )
            return result.rowcount == 1

    async def renew(self, worker_id: int) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(worker_leases)
                .where(worker_leases.c.worker_id == worker_id, worker_leases.c.owner == self._owner)
                .values(expires_at_ms=self._clock_ms() + self._ttl_ms)
            )
        if result.rowcount != 1:
            raise LeaseLost(f"worker id {worker_id} is no longer leased to {self._owner}")

    async def release(self, worker_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(worker_leases)
                .where(worker_leases.c.worker_id == worker_id, worker_leases.c.owner == self._owner)
                .values(expires_at_ms=0)
            )
