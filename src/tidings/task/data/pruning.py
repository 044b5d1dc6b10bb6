"""``SQLAgedRows``: a table's rows pruned through its owner's own delete (a service publishes the rule in its
``store``: ``account.store.tokens`` for expired refresh tokens, ``chat.store.reservations`` for send reservations),
each batch fenced by the task's lease."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.task.biz.errors import Unavailable
from tidings.task.data.leases import FencedRepo, SQLLease

# (connection, before_ms, limit) -> rows deleted
Prune = Callable[[AsyncConnection, int, int], Awaitable[int]]
# (connection, before_ms) -> rows a prune would delete
Count = Callable[[AsyncConnection, int], Awaitable[int]]


class SQLAgedRows(FencedRepo):
    def __init__(self, engine: AsyncEngine, lease: SQLLease, *, prune: Prune, count: Count) -> None:
        super().__init__(engine, lease)
        self._prune = prune
        self._count = count

    async def prune(self, before_ms: int, limit: int) -> int:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                return await self._prune(conn, before_ms, limit)

    async def count(self, before_ms: int) -> int:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await self._count(conn, before_ms)
