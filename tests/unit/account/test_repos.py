"""The account store contract on the fakes the use-case tests run on, and on SQLite (the embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.account_repos import AccountRepos, AccountReposContract, sql_repos
from tests.unit.account.fakes import FakeBlocks, FakeRefreshTokens, FakeUsers


# ``engine``: a migrated SQLite database (tests/unit/conftest.py).
@pytest.fixture(params=["fake", "sqlite"])
async def repos(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[AccountRepos]:
    if request.param == "fake":
        yield AccountRepos(FakeUsers(), FakeRefreshTokens(), FakeBlocks())
        return
    yield sql_repos(engine)


class TestAccountRepos(AccountReposContract):
    pass
