from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf


async def test_migrations_apply_and_revert_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await db.upgrade(url)
    await db.upgrade(url)  # a second run is a no-op
    engine = db.create_engine(DatabaseConf(url=url))
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "worker_leases" in tables
        await db.downgrade(url, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "worker_leases" not in tables
    finally:
        await engine.dispose()
