"""The chat repository contracts on MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import ConversationRepoContract, DedupStoreContract, MessageRepoContract


@pytest.fixture
def engine(mysql_engine: AsyncEngine) -> AsyncEngine:
    return mysql_engine


class TestMySQLConversationRepo(ConversationRepoContract):
    pass


class TestMySQLMessageRepo(MessageRepoContract):
    pass


class TestMySQLDedupStore(DedupStoreContract):
    pass
