"""What SQL repositories share: bounded transactions, one-round-trip statements, chunked ``IN`` lists, and inserts
that skip duplicates (SQLite and MySQL/MariaDB alike)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import Insert, Table
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.pkg.db import ReadReplica, is_replica_failure

T = TypeVar("T")

# Bound parameters per IN list: well below every driver's limit, and big enough that few round trips are needed.
IN_CHUNK = 500


class SQLRepo:
    """A repository on the process's engines; every block runs under ``timeout_s`` (I/O is never unbounded).

    ``engine`` runs transactions; ``statements`` (``Infra.statements_engine``, autocommit) runs reads and writes of
    one statement, one round trip each: no COMMIT after the write, no ROLLBACK to end the read. Without it (SQLite,
    and tests of one engine) ``engine`` serves both. ``replica`` (``Infra.replica``, optional) serves the reads a
    method sends through ``_replica_read``: those that may be a little behind the primary (docs/DATA.md); every
    other read and every write stays on the primary.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        statements: AsyncEngine | None = None,
        replica: ReadReplica | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self._statements = statements
        self._replica = replica
        self._timeout_s = timeout_s

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: committed when the block ends, rolled back if it raises or runs out of time."""
        async with asyncio.timeout(self._timeout_s), self._engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[AsyncConnection]:
        """For a write of exactly one statement, which commits (or fails) by itself: one round trip."""
        if self._statements is None or self._statements is self._engine:
            async with self._write() as conn:
                yield conn
        else:
            async with asyncio.timeout(self._timeout_s), self._statements.connect() as conn:
                yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """Reads; on the statements engine each statement sees what was committed when it ran."""
        async with asyncio.timeout(self._timeout_s), (self._statements or self._engine).connect() as conn:
            yield conn

    async def _replica_read(self, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``read`` where a slightly old answer is fine: on the replica when there is one and it answers; on the
        primary (``_read``) when there is none, when it failed within ``database.replica_retry_after_s``, or when it
        fails now (then ``read`` runs again on the primary: a read has no effect to repeat). A read that needs its
        own writes, or guards a write, uses ``_read``."""
        replica = self._replica
        if replica is not None and replica.available:
            try:
                async with asyncio.timeout(self._timeout_s), replica.engine.connect() as conn:
                    result = await read(conn)
            except Exception as error:
                if not is_replica_failure(error):
                    raise
                replica.failed(error)
            else:
                replica.served("replica")
                return result
        async with self._read() as conn:
            result = await read(conn)
        if replica is not None:
            replica.served("primary")
        return result


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_skipping_duplicates(dialect: Dialect, table: Table, key_column: str) -> Insert:
    """An INSERT that leaves rows whose unique keys exist untouched, portably (SQLite and MySQL/MariaDB).

    Unlike MySQL's ``INSERT IGNORE`` it swallows only duplicate keys, not other errors such as truncation.
    """
    if dialect.name in ("mysql", "mariadb"):
        stmt = mysql_insert(table)
        # Assigning a key column to itself changes nothing: the duplicate row stays as it is.
        return stmt.on_duplicate_key_update({key_column: stmt.table.c[key_column]})
    if dialect.name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no duplicate-skipping insert for {dialect.name}")
