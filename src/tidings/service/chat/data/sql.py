"""What the chat repositories share: bounded transactions, chunked ``IN`` lists, and inserts that skip duplicates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import Insert, Table
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")

# Bound parameters per IN list: well below every driver's limit, and big enough that few round trips are needed.
IN_CHUNK = 500


class SQLRepo:
    """A repository on one engine; every statement runs under ``timeout_s`` (I/O is never unbounded)."""

    def __init__(self, engine: AsyncEngine, *, timeout_s: float = 10.0) -> None:
        self._engine = engine
        self._timeout_s = timeout_s

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: committed when the block ends, rolled back if it raises or runs out of time."""
        async with asyncio.timeout(self._timeout_s), self._engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with asyncio.timeout(self._timeout_s), self._engine.connect() as conn:
            yield conn


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
