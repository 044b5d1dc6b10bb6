"""MariaDB through SQLAlchemy async (aiomysql) with the Alembic migrations applied."""

from __future__ import annotations

import asyncio

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.worker_lease import WorkerLeaseContract
from tidings import migrations
from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf
from tidings.pkg.idgen.tables import worker_leases


async def test_migrations_apply_revert_and_reapply_on_mariadb(mysql_url: str) -> None:
    await migrations.upgrade(mysql_url)
    engine = db.create_engine(DatabaseConf(url=mysql_url))
    try:
        async with engine.connect() as conn:
            assert "worker_leases" in await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        # One head per owner's branch (framework, account, chat).
        heads = ScriptDirectory.from_config(migrations.alembic_config(mysql_url)).get_heads()
        assert sorted(versions) == sorted(heads)
        assert len(heads) == len(migrations.BRANCHES)
        await migrations.downgrade(mysql_url, "base")
        async with engine.connect() as conn:
            assert "worker_leases" not in await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        await migrations.upgrade(mysql_url)
        async with engine.begin() as conn:
            await conn.execute(worker_leases.insert().values(worker_id=1, owner="a", expires_at_ms=1))
            rows = (await conn.execute(select(worker_leases.c.owner))).scalars().all()
        assert rows == ["a"]
    finally:
        await engine.dispose()


async def test_an_idle_connection_the_server_killed_is_replaced_and_a_busy_one_is_not_pinged(mysql_url: str) -> None:
    pings: list[None] = []
    engine = db.create_engine(
        DatabaseConf(url=mysql_url, pool_size=1, ping_idle_s=0.3), on_ping=lambda: pings.append(None)
    )
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one()
        for _ in range(3):  # back at once: no ping, the same connection
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one() == first
        assert pings == []
        killer = db.create_engine(DatabaseConf(url=mysql_url))
        try:
            async with killer.connect() as other:
                await other.execute(text(f"KILL CONNECTION {first}"))
        finally:
            await killer.dispose()
        await asyncio.sleep(0.5)
        # Idle past ping_idle_s: the dead connection fails its ping and is replaced before the statement runs.
        async with engine.connect() as conn:
            replaced = (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one()
        assert replaced != first
        assert pings
    finally:
        await engine.dispose()


async def test_the_statements_engine_sends_no_commit_or_rollback_and_its_writes_commit_by_themselves(
    mysql_engine: AsyncEngine, statements: AsyncEngine
) -> None:
    async def transaction_ends() -> int:
        """COMMITs and ROLLBACKs the (one, reused) pooled connection has sent so far."""
        async with statements.connect() as conn:
            rows = await conn.execute(text("SHOW SESSION STATUS WHERE Variable_name IN ('Com_commit', 'Com_rollback')"))
            return sum(int(value) for _, value in rows)

    before = await transaction_ends()
    for _ in range(3):
        async with statements.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    async with statements.connect() as conn:
        await conn.execute(worker_leases.insert().values(worker_id=7, owner="b", expires_at_ms=1))
    assert await transaction_ends() == before
    # The insert is committed: another engine's transaction sees it.
    async with mysql_engine.connect() as conn:
        assert (await conn.execute(select(worker_leases.c.owner))).scalars().all() == ["b"]


async def test_a_ping_to_a_closed_port_names_the_database() -> None:
    engine = db.create_engine(DatabaseConf(url="mysql+aiomysql://tidings:tidings@127.0.0.1:1/tidings"))
    try:
        with pytest.raises(db.DatabaseUnavailable, match=r"cannot reach mysql at 127\.0\.0\.1:1/tidings"):
            await db.ping(engine, timeout_s=3)
    finally:
        await engine.dispose()


class TestMariaDBWorkerLease(WorkerLeaseContract):
    @pytest.fixture
    def engine(self, mysql_engine: AsyncEngine) -> AsyncEngine:
        return mysql_engine
