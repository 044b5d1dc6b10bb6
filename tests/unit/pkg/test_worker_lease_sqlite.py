from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.worker_lease import WorkerLeaseContract
from tidings import migrations
from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf


class TestSQLiteWorkerLease(WorkerLeaseContract):
    @pytest.fixture
    async def engine(self, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'lease.db'}"
        await migrations.upgrade(url)
        engine = db.create_engine(DatabaseConf(url=url))
        yield engine
        await engine.dispose()
