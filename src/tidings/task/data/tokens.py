"""``SQLExpiredTokens``: refresh tokens pruned through account's one retention delete (``account.store.tokens``), each
batch fenced by the task's lease."""

from __future__ import annotations

from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.service.account.store.tokens import count_expired_tokens, prune_expired_tokens
from tidings.task.biz.errors import Unavailable
from tidings.task.data.leases import FencedRepo


class SQLExpiredTokens(FencedRepo):
    async def prune_expired(self, before_ms: int, limit: int) -> int:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                return await prune_expired_tokens(conn, before_ms, limit)

    async def count_expired(self, before_ms: int) -> int:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await count_expired_tokens(conn, before_ms)
