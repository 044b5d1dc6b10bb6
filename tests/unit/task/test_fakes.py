"""The fakes the task's tests run on, held to the contracts of the stores they stand for."""

from __future__ import annotations

import pytest

from tests.contracts.account_repos import AccountRepos, AccountReposContract
from tests.unit.account.fakes import FakeBlocks, FakeUsers
from tests.unit.task.fakes import FakeTokens


@pytest.fixture
def repos() -> AccountRepos:
    return AccountRepos(FakeUsers(), FakeTokens(), FakeBlocks())


class TestTokensAsTheRetentionTaskPrunesThem(AccountReposContract):
    pass
