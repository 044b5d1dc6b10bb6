"""The back office's tables, the same on SQLite and MariaDB: operators, sessions, failed logins, and the audit log,
which refuses every UPDATE and DELETE (its triggers), also from plain SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.admin.biz.model import AuditEntry, AuditQuery, AuditResult, Operator, Outcome, Role
from tidings.admin.data.audit import SQLAuditLog
from tidings.admin.data.operators import SQLLoginFailures, SQLOperatorRepo, SQLSessionRepo
from tidings.admin.tables import audit_entries, audit_outcomes
from tidings.pkg.errors import TidingsError


def entry(entry_id: int, *, action: str = "ban_user", target: str = "7", reason: str = "spam") -> AuditEntry:
    return AuditEntry(entry_id, 1000 + entry_id, 1, "alice", action, "user", target, reason, "t" * 32)


class AdminStoreContract:
    @pytest.fixture
    def store_engine(self, engine: AsyncEngine) -> AsyncEngine:
        return engine

    async def test_operators(self, store_engine: AsyncEngine) -> None:
        repo = SQLOperatorRepo(store_engine)
        alice = Operator(1, "alice", Role.ADMIN, 5, "hash", "SECRET")
        await repo.add(alice)
        with pytest.raises(TidingsError) as caught:
            await repo.add(Operator(2, "alice", Role.VIEWER, 6, "hash"))
        assert caught.value.reason == "OPERATOR_EXISTS"
        await repo.add(Operator(3, "bob", Role.VIEWER, 7, "hash2"))
        assert await repo.by_username("alice") == alice
        assert await repo.get(1) == alice
        assert await repo.by_username("carol") is None
        assert await repo.get(9) is None
        assert [o.username for o in await repo.all()] == ["alice", "bob"]

    async def test_sessions_live_until_they_expire_or_end(self, store_engine: AsyncEngine) -> None:
        sessions = SQLSessionRepo(store_engine)
        await sessions.add("h1", 1, "c1", now_ms=100, expires_at_ms=200)
        await sessions.add("h2", 1, "c2", now_ms=150, expires_at_ms=300)
        assert await sessions.find("h1", 199) == (1, "c1", 200)
        assert await sessions.find("h1", 200) is None
        await sessions.remove("h2")
        assert await sessions.find("h2", 160) is None

    async def test_failed_logins_lock_after_the_limit(self, store_engine: AsyncEngine) -> None:
        failures = SQLLoginFailures(store_engine)
        assert await failures.locked_until("x") == 0
        assert [await failures.failed("x", 10, max_failures=3, lock_ms=50) for _ in range(3)] == [0, 0, 60]
        assert await failures.locked_until("x") == 60
        assert await failures.failed("x", 70, max_failures=3, lock_ms=50) == 0
        await failures.clear("x")
        assert await failures.locked_until("x") == 0

    async def test_the_audit_log_pages_newest_first_with_filters(self, store_engine: AsyncEngine) -> None:
        log = SQLAuditLog(store_engine)
        for n in range(1, 6):
            await log.begin(entry(n, action="ban_user" if n % 2 else "remove_message", reason=f"spam {n}%"))
        await log.finish(AuditResult(1, 2000, Outcome.OK, before={"name": "é"}, after={"banned": True}))
        await log.finish(AuditResult(2, 2001, Outcome.FAILED, "UNAVAILABLE: down"))
        records = await log.page(AuditQuery(limit=10))
        assert [r.entry.id for r in records] == [5, 4, 3, 2, 1]
        assert [r.outcome for r in records] == [Outcome.UNKNOWN] * 3 + [Outcome.FAILED, Outcome.OK]
        assert records[-1].entry == entry(1, reason="spam 1%")
        assert records[-1].result is not None
        assert records[-1].result.after == {"banned": True}
        assert records[-1].result.before == {"name": "é"}
        assert [r.entry.id for r in await log.page(AuditQuery(action="remove_message"))] == [4, 2]
        assert [r.entry.id for r in await log.page(AuditQuery(before_id=4, limit=2))] == [3, 2]
        assert [r.entry.id for r in await log.page(AuditQuery(text="spam 3%"))] == [3]
        assert [r.entry.id for r in await log.page(AuditQuery(text="%"))] == [5, 4, 3, 2, 1]
        assert await log.page(AuditQuery(operator="bob")) == []

    async def test_the_audit_log_refuses_updates_and_deletes(self, store_engine: AsyncEngine) -> None:
        log = SQLAuditLog(store_engine)
        await log.begin(entry(1))
        await log.finish(AuditResult(1, 2000, Outcome.OK))
        for statement in (
            update(audit_entries).values(reason="nothing happened"),
            delete(audit_entries),
            update(audit_outcomes).values(outcome="failed"),
            delete(audit_outcomes),
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with store_engine.begin() as conn:
                    await conn.execute(statement)
        with pytest.raises(DBAPIError):
            async with store_engine.begin() as conn:
                await conn.execute(text("DELETE FROM admin_audit_entries WHERE id = 1"))
        [record] = await log.page(AuditQuery())
        assert record.entry.reason == "spam"
        assert record.outcome is Outcome.OK
        with pytest.raises(DBAPIError):  # one result per entry
            await log.finish(AuditResult(1, 2001, Outcome.FAILED))
