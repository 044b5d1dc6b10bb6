"""Task leases in the ``task_runs`` table, and ``FencedRepo``: writes that check the lease's fencing token.

A lease is a row, not a server-side lock (such as MySQL's ``GET_LOCK``) held by a connection: a runner that is
paused (SIGSTOP, a long GC, a frozen VM) keeps its connection, and with it such a lock, for as long as the server
lets it, while a lease expires after ``ttl_s`` and lets another process take over. Expiry alone is not enough,
since the paused runner wakes up believing it still runs the task; so each take-over increments the row's token,
and every write of a run checks, in its own transaction, that the token is still the one it was given. The check
holds a shared lock on the lease row until the write commits, so a take-over waits for a write in flight and the
old runner's next write is refused. Expiry uses the processes' clocks, which only decides *when* another may take
over; the token alone decides who may write. The same rows serve the embedded database (one process, or a
``tidings task run`` beside it).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.pkg import db
from tidings.pkg.clock import Clock
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo
from tidings.task.biz.errors import LeaseLost, Unavailable
from tidings.task.biz.runs import Run
from tidings.task.tables import task_runs

MAX_CHECKPOINT = 256


def process_holder() -> str:
    """This process's name as a lease holder: host, pid and a random part (pids are reused across restarts)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class SQLLease(SQLRepo):
    """One task's lease, held by ``holder``; ``token`` is the fencing token of the current hold (``None``: not held)."""

    def __init__(
        self, engine: AsyncEngine, name: str, *, holder: str, ttl_s: float, clock: Clock, timeout_s: float = 10.0
    ) -> None:
        super().__init__(engine, timeout_s=timeout_s)
        self._name = name
        self._holder = holder
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self.token: int | None = None

    @property
    def name(self) -> str:
        return self._name

    async def acquire(self) -> bool:
        if await self.renew():
            return True
        now = self._clock.now_ms()
        row = task_runs.c.name == self._name
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                taken = await conn.execute(
                    update(task_runs)
                    .where(row, task_runs.c.lease_until_ms <= now)
                    .values(holder=self._holder, token=task_runs.c.token + 1, lease_until_ms=now + self._ttl_ms)
                )
                if taken.rowcount == 1:
                    self.token = await conn.scalar(select(task_runs.c.token).where(row))
                    return True
                if await conn.scalar(select(task_runs.c.name).where(row)) is not None:
                    return False  # held by another process
            # The task's first lease ever: its row is created with it (of two racing processes, one inserts).
            try:
                async with self._write() as conn:
                    await conn.execute(
                        insert(task_runs).values(
                            name=self._name,
                            holder=self._holder,
                            token=1,
                            lease_until_ms=now + self._ttl_ms,
                            started_at_ms=0,
                            outcome="",
                            items=0,
                            error="",
                        )
                    )
            except IntegrityError:
                return False
        self.token = 1
        return True

    async def renew(self) -> bool:
        if self.token is None:
            return False
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                renewed = await conn.execute(
                    update(task_runs).where(self._ours()).values(lease_until_ms=self._clock.now_ms() + self._ttl_ms)
                )
        if renewed.rowcount != 1:
            self.token = None
            return False
        return True

    async def release(self) -> None:
        if self.token is None:
            return
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                await conn.execute(update(task_runs).where(self._ours()).values(lease_until_ms=0))
        self.token = None

    async def record(self, run: Run) -> None:
        values = {
            "started_at_ms": run.started_at_ms,
            "finished_at_ms": run.finished_at_ms,
            "outcome": run.outcome,
            "items": run.items,
            "error": run.error[:512],
        }
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                recorded = await conn.execute(update(task_runs).where(self._ours()).values(values))
        if recorded.rowcount != 1:
            raise LeaseLost(self._name)

    async def load_checkpoint(self) -> str:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                found = await conn.scalar(select(task_runs.c.checkpoint).where(task_runs.c.name == self._name))
        return found or ""

    async def save_checkpoint(self, checkpoint: str) -> None:
        if len(checkpoint) > MAX_CHECKPOINT:
            raise ValueError(f"a checkpoint holds at most {MAX_CHECKPOINT} characters")
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                saved = await conn.execute(update(task_runs).where(self._ours()).values(checkpoint=checkpoint))
        if saved.rowcount != 1:
            raise LeaseLost(self._name)

    async def fence(self, conn: AsyncConnection) -> None:
        """Check, inside the caller's transaction, that the lease is still ours; ``LeaseLost`` if not. The row stays
        share-locked until that transaction ends (MySQL; SQLite runs one writer at a time anyway)."""
        token = await conn.scalar(
            select(task_runs.c.token).where(task_runs.c.name == self._name).with_for_update(read=True)
        )
        if self.token is None or token != self.token:
            raise LeaseLost(self._name)

    def _ours(self) -> ColumnElement[bool]:
        return and_(task_runs.c.name == self._name, task_runs.c.holder == self._holder, task_runs.c.token == self.token)


class SQLLeases:
    """The leases of this process, one per task, the same object for the scheduler and the task's repositories."""

    def __init__(self, engine: AsyncEngine, *, ttl_s: float, clock: Clock, holder: str | None = None) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        self._holder = holder or process_holder()
        self._leases: dict[str, SQLLease] = {}

    def lease(self, name: str) -> SQLLease:
        if name not in self._leases:
            self._leases[name] = SQLLease(self._engine, name, holder=self._holder, ttl_s=self._ttl_s, clock=self._clock)
        return self._leases[name]


class FencedRepo(SQLRepo):
    """A task's repository whose every write transaction first checks the task's lease (``SQLLease.fence``)."""

    def __init__(self, engine: AsyncEngine, lease: SQLLease, *, timeout_s: float = 10.0) -> None:
        super().__init__(engine, timeout_s=timeout_s)
        self._lease = lease

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with super()._write() as conn:
            await self._lease.fence(conn)
            yield conn
