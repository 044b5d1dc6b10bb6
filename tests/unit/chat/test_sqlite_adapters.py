"""The chat repository and seq allocator contracts on SQLite and in-process memory (the embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import ConversationRepoContract, DedupStoreContract, MessageRepoContract
from tests.contracts.chat_seq import SeqAllocatorContract
from tidings.pkg import db
from tidings.pkg.conf import DatabaseConf
from tidings.service.chat.biz.ports import SeqAllocator
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.seq import MemorySeqAllocator, SQLSeqLease


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    await db.upgrade(url)
    engine = db.create_engine(DatabaseConf(url=url))
    yield engine
    await engine.dispose()


class TestSQLiteConversationRepo(ConversationRepoContract):
    pass


class TestSQLiteMessageRepo(MessageRepoContract):
    pass


class TestSQLiteDedupStore(DedupStoreContract):
    pass


class TestMemorySeqAllocator(SeqAllocatorContract):
    @pytest.fixture(autouse=True)
    def _stores(self, lease: SQLSeqLease, metrics: ChatMetrics) -> None:
        self._lease, self._metrics = lease, metrics

    def allocator(self) -> SeqAllocator:
        return MemorySeqAllocator(self._lease, self._metrics)

    async def lose_cache(self, allocators: list[SeqAllocator]) -> list[SeqAllocator]:
        # The cache is the process's memory: losing it is a restart of every chat process.
        return [self.allocator() for _ in allocators]
