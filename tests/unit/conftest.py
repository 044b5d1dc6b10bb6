"""Fixtures of the unit tests: a migrated, empty SQLite database per test (the embedded mode's store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings import migrations
from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tidings.db'}"
    await migrations.upgrade(url)
    engine = db.create_engine(DatabaseConf(url=url))
    yield engine
    await engine.dispose()
