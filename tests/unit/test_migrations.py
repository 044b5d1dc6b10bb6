"""Each owner's branch of migrations, applied and reverted on SQLite, alone or together."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from tidings import migrations
from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf

# Each branch's head: framework, account, chat, task, admin.
HEADS = {"0001", "0012", "0011", "0009", "0013"}  # framework, account, chat, task, admin


async def _tables_and_versions(url: str) -> tuple[set[str], set[str]]:
    engine = db.create_engine(DatabaseConf(url=url))
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            versions: set[str] = set()
            if "alembic_version" in tables:
                versions = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
        return tables, versions
    finally:
        await engine.dispose()


async def test_migrations_apply_and_revert_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await migrations.upgrade(url)
    await migrations.upgrade(url)  # a second run is a no-op
    tables, versions = await _tables_and_versions(url)
    assert {"worker_leases", "users", "messages", "task_runs"} <= tables
    assert versions == HEADS  # each branch at its head
    await migrations.downgrade(url, "base")
    tables, versions = await _tables_and_versions(url)
    assert not {"worker_leases", "users", "messages", "task_runs"} & tables
    assert versions == set()


async def test_a_branch_applies_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await migrations.upgrade(url, "chat@head")
    tables, versions = await _tables_and_versions(url)
    assert "messages" in tables
    assert not {"users", "worker_leases", "task_runs"} & tables
    assert versions == {"0011"}
    await migrations.upgrade(url)
    tables, versions = await _tables_and_versions(url)
    assert {"worker_leases", "users", "messages", "task_runs"} <= tables
    assert versions == HEADS


async def test_a_database_migrated_when_the_revisions_were_one_line_is_taken_up_by_the_branches(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    # The schema of those days: the revisions of the single line, and no task module's table yet.
    for revision in ("0001", "0002", "0003"):  # the single line's revisions
        await migrations.upgrade(url, revision)
    engine = db.create_engine(DatabaseConf(url=url))
    try:
        async with engine.begin() as conn:
            # What the single line recorded once it had reached chat's revision: only its last revision.
            await conn.execute(text("DELETE FROM alembic_version"))
            await conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0003')"))
    finally:
        await engine.dispose()
    await migrations.upgrade(url)  # nothing created again: the line's branches are known at their heads
    tables, versions = await _tables_and_versions(url)
    assert versions == HEADS
    assert "task_runs" in tables
