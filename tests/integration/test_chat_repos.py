"""The chat store contracts on MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import (
    ChatStores,
    ConversationRepoContract,
    DedupStoreContract,
    MessageRepoContract,
    sql_stores,
)


@pytest.fixture
def stores(mysql_engine: AsyncEngine, statements: AsyncEngine) -> ChatStores:
    return sql_stores(mysql_engine, statements)


class TestMySQLConversationRepo(ConversationRepoContract):
    pass


class TestMySQLMessageRepo(MessageRepoContract):
    pass


class TestMySQLDedupStore(DedupStoreContract):
    pass
