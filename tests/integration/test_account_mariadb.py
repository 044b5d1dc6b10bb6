from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.account_repos import AccountReposContract


class TestMariaDBAccountRepos(AccountReposContract):
    @pytest.fixture
    def engine(self, mysql_engine: AsyncEngine) -> AsyncEngine:
        return mysql_engine
