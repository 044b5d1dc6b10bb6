"""Alembic environment: runs every owner's migrations on the async engine of the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import inspect, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.admin import tables as admin_tables
from tidings.pkg.idgen import tables as framework_tables
from tidings.service.account import tables as account_tables
from tidings.service.chat import tables as chat_tables
from tidings.task import tables as task_tables

# Before each owner had a branch of its own, the revisions formed one line, and a database migrated then records
# only the last one it reached. Each revision of that line, with a table it created.
_LINE = (("0001", "worker_leases"), ("0002", "users"), ("0003", "messages"))


def _record_each_branch(connection: Connection) -> None:
    """A database from the time of the single line records each branch's revision instead of the line's last,
    for the revisions whose tables are there; Alembic then sees which branches are where."""
    if not inspect(connection).has_table("alembic_version"):
        return
    recorded = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    revisions = [revision for revision, _ in _LINE]
    if len(recorded) != 1 or recorded[0] not in revisions[1:]:
        return
    reached = revisions.index(recorded[0])
    present = set(inspect(connection).get_table_names())
    applied = [revision for revision, table in _LINE[: reached + 1] if table in present]
    connection.execute(text("DELETE FROM alembic_version"))
    for revision in applied:
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:revision)"), {"revision": revision})


def _run(connection: Connection) -> None:
    _record_each_branch(connection)
    context.configure(
        connection=connection,
        target_metadata=[
            framework_tables.metadata,
            account_tables.metadata,
            chat_tables.metadata,
            task_tables.metadata,
            admin_tables.metadata,
        ],
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url", ""), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
asyncio.run(_run_async())
