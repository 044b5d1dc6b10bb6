"""Who runs the scheduled jobs: a named lock in the database every task process already uses.

On MySQL/MariaDB it is ``GET_LOCK``, held by one dedicated connection: the server frees it when that connection
ends, so a runner that crashes, hangs up or loses the database gives the role to the next process that asks, with
no lease to expire and no clock to trust. (A lock table with a TTL would need both; the server's own named locks
are made for exactly this.) The embedded database serves one process, which is therefore always the runner.
"""

from __future__ import annotations

import contextlib
import hashlib

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger("tidings.task")

LOCK_PREFIX = "tidings.task."
# MySQL refuses lock names longer than this.
_MAX_LOCK_NAME = 64


class LocalLeadership:
    """The only process on its database: always the runner."""

    async def hold(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class MySQLLeadership:
    """``GET_LOCK(name)`` on a connection kept open while this process is the runner.

    Named locks belong to the whole server, so the name carries the database's: two deployments (or two test
    runs) on one server each have their runner.
    """

    def __init__(self, engine: AsyncEngine, name: str | None = None) -> None:
        self._engine = engine
        self._name = name or lock_name(engine.url.database or "")
        self._conn: AsyncConnection | None = None

    async def hold(self) -> bool:
        if self._conn is not None:
            try:
                # Still ours? (The server frees the lock if this connection was killed or timed out.)
                mine = await self._conn.scalar(text("SELECT IS_USED_LOCK(:n) = CONNECTION_ID()"), {"n": self._name})
            except Exception:
                await self.release()
                raise
            if mine:
                return True
            await self.release()
        conn = await self._engine.connect()
        try:
            # Autocommit: the connection lives as long as the role and must not hold a transaction (and its
            # snapshot) open all that time.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            # Timeout 0: ask, never wait; the runner holds the lock for as long as it lives.
            taken = await conn.scalar(text("SELECT GET_LOCK(:n, 0)"), {"n": self._name})
        except Exception:
            await conn.close()
            raise
        if taken != 1:
            await conn.close()
            return False
        self._conn = conn
        log.info("task runner role taken", lock=self._name)
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # a dead connection has freed the lock already
            await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self._name})
        with contextlib.suppress(Exception):
            await conn.close()


def lock_name(database: str) -> str:
    name = LOCK_PREFIX + database
    if len(name) <= _MAX_LOCK_NAME:
        return name
    return LOCK_PREFIX + hashlib.sha256(database.encode()).hexdigest()[: _MAX_LOCK_NAME - len(LOCK_PREFIX)]


def leadership_for(engine: AsyncEngine) -> LocalLeadership | MySQLLeadership:
    return LocalLeadership() if engine.dialect.name == "sqlite" else MySQLLeadership(engine)
