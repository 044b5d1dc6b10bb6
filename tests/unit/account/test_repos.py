"""The account store contract on the fakes the use-case tests run on, and on SQLite (the embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contracts.account_repos import AccountRepos, AccountReposContract, sql_repos
from tests.unit.account.fakes import FakeBlocks, FakeRefreshTokens, FakeUsers
from tidings import migrations
from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf


@pytest.fixture(params=["fake", "sqlite"])
async def repos(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AccountRepos]:
    if request.param == "fake":
        yield AccountRepos(FakeUsers(), FakeRefreshTokens(), FakeBlocks())
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'account.db'}"
    await migrations.upgrade(url)
    engine = db.create_engine(DatabaseConf(url=url))
    yield sql_repos(engine)
    await engine.dispose()


class TestAccountRepos(AccountReposContract):
    pass
