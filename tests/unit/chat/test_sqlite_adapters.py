"""The chat repository and seq allocator contracts on SQLite and in-process memory (the embedded mode)."""

from __future__ import annotations

import pytest

from tests.contracts.chat_repos import ConversationRepoContract, DedupStoreContract, MessageRepoContract
from tests.contracts.chat_seq import SeqAllocatorContract
from tidings.service.chat.biz.ports import SeqAllocator
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.seq import MemorySeqAllocator, SQLSeqLease


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
