"""The back office's tables on MariaDB: the same contract as on SQLite, triggers included."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.admin_store import AdminStoreContract


class TestAdminStoreOnMariaDB(AdminStoreContract):
    @pytest.fixture
    def store_engine(self, mysql_engine: AsyncEngine) -> AsyncEngine:
        return mysql_engine
