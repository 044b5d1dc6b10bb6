"""The chat store and seq allocator contracts on the fakes the use-case tests run on, and on the embedded
adapters (SQLite, seqs handed out from memory)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import (
    ChatStores,
    ConversationRepoContract,
    DedupStoreContract,
    MessageRepoContract,
    sql_stores,
)
from tests.contracts.chat_seq import (
    BlockLeaseContract,
    SeqAdapter,
    SeqAllocatorContract,
    SharedOrderContract,
    conversations_in,
)
from tests.unit.chat.fakes import FakeConversations, FakeDedup, FakeMessages, FakeSeqs
from tidings.service.chat.biz.ports import SeqAllocator
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.seq import MemorySeqAllocator, SQLSeqLease


def fake_stores() -> ChatStores:
    conversations = FakeConversations()
    messages = FakeMessages(conversations)
    dedup = FakeDedup()
    dedup.stored = messages.stored.values
    return ChatStores(conversations, messages, dedup, dedup.prune)


@pytest.fixture(params=["fake", "sqlite"])
def stores(request: pytest.FixtureRequest) -> ChatStores:
    if request.param == "fake":
        return fake_stores()
    engine: AsyncEngine = request.getfixturevalue("engine")
    return sql_stores(engine)


class TestConversationRepo(ConversationRepoContract):
    pass


class TestMessageRepo(MessageRepoContract):
    pass


class TestDedupStore(DedupStoreContract):
    pass


def fake_seqs() -> SeqAdapter:
    conversations = FakeConversations()
    # The fake has no cache: one instance is its store, what every "process" shares and nothing can lose.
    seqs = FakeSeqs(conversations)

    async def keep(allocators: list[SeqAllocator]) -> list[SeqAllocator]:
        return allocators

    return SeqAdapter(lambda: seqs, conversations_in(conversations), keep)


def memory_seqs(engine: AsyncEngine, registry: CollectorRegistry) -> SeqAdapter:
    lease, metrics = SQLSeqLease(engine), ChatMetrics(registry)

    def allocator() -> SeqAllocator:
        return MemorySeqAllocator(lease, metrics)

    async def restart(allocators: list[SeqAllocator]) -> list[SeqAllocator]:
        # The cache is the process's memory: losing it is a restart of every chat process.
        return [allocator() for _ in allocators]

    return SeqAdapter(allocator, conversations_in(SQLConversationRepo(engine)), restart)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


class TestSeqAllocator(SeqAllocatorContract):
    @pytest.fixture(params=["fake", "memory"])
    def adapter(self, request: pytest.FixtureRequest, registry: CollectorRegistry) -> SeqAdapter:
        if request.param == "fake":
            return fake_seqs()
        return memory_seqs(request.getfixturevalue("engine"), registry)


class TestMemorySeqAllocatorLeases(BlockLeaseContract):
    @pytest.fixture
    def adapter(self, engine: AsyncEngine, registry: CollectorRegistry) -> SeqAdapter:
        return memory_seqs(engine, registry)


class TestFakeSeqsOrder(SharedOrderContract):
    """The fake gives every sender of a World one order, as the Redis allocator gives every chat instance."""

    @pytest.fixture
    def adapter(self) -> SeqAdapter:
        return fake_seqs()
