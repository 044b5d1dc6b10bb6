"""The retention task's adapters: chat's history through chat's own rule (``chat.store.retention``), each delete
fenced by the task's lease; and the embedded mode's stand-in for the recent windows, which live in Redis only."""

from __future__ import annotations

from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.service.chat.store import retention
from tidings.task.biz.errors import Unavailable
from tidings.task.data.leases import FencedRepo


class SQLHistory(FencedRepo):
    async def conversations_after(self, conversation_id: int, limit: int) -> list[tuple[int, str]]:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await retention.conversations_after(conn, conversation_id, limit)

    async def expired_through(self, conversation_id: int, before_ms: int, limit: int) -> int | None:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await retention.expired_through(conn, conversation_id, before_ms, limit)

    async def delete_through(self, conversation_id: int, seq: int) -> int:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                return await retention.delete_through(conn, conversation_id, seq)

    async def count_older(self, kind: str, before_ms: int) -> int:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await retention.count_older(conn, kind, before_ms)


class NoWindows:
    """The embedded mode keeps no recent windows (they are a Redis structure): nothing to drop."""

    async def forget(self, conversation_id: int) -> None:
        return None
