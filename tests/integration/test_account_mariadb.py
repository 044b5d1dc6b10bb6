"""The account store contract on MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.account_repos import AccountRepos, AccountReposContract, sql_repos


@pytest.fixture
def repos(mysql_engine: AsyncEngine, statements: AsyncEngine) -> AccountRepos:
    return sql_repos(mysql_engine, statements)


class TestMariaDBAccountRepos(AccountReposContract):
    pass
