"""Conversation states read cache-aside (SQLite and the in-process store): the repository contract holds, a second
sync reads no row, and every write that changes max seq, a read mark or a membership is seen by the next read."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import NOW, ConversationRepoContract, message, new_id
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, MemoryStore
from tidings.pkg.cache.kit import CacheKit
from tidings.service.chat.biz.model import Conversation, Kind, Member, Role
from tidings.service.chat.data.caches import ChatCaches, chat_caches
from tidings.service.chat.data.conversations import CachedConversationRepo, SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def invalidator(store: MemoryStore) -> LocalInvalidator:
    return LocalInvalidator(store, delay_s=0.01)


@pytest.fixture
def caches(registry: CollectorRegistry, store: MemoryStore, invalidator: LocalInvalidator) -> ChatCaches:
    return chat_caches(CacheKit(store, invalidator, CacheMetrics(registry, "chat"), CachePolicy()))


class TestCachedConversationRepo(ConversationRepoContract):
    @pytest.fixture
    def repo(self, engine: AsyncEngine, caches: ChatCaches) -> SQLConversationRepo:
        return CachedConversationRepo(engine, caches)


@pytest.fixture
def repo(engine: AsyncEngine, caches: ChatCaches) -> CachedConversationRepo:
    return CachedConversationRepo(engine, caches)


async def group(repo: SQLConversationRepo, *members: int) -> int:
    cid = new_id()
    rows = [Member(cid, user, Role.OWNER if n == 0 else Role.MEMBER, 0, NOW) for n, user in enumerate(members)]
    await repo.create(Conversation(cid, Kind.GROUP, "g", members[0], 0, None, NOW, NOW, len(members)), rows)
    return cid


def loads(registry: CollectorRegistry, cache: str) -> float:
    return registry.get_sample_value("tidings_chat_cache_loads_total", {"cache": cache}) or 0


async def unread(repo: SQLConversationRepo, user: int, conversation_ids: list[int]) -> dict[int, int]:
    return {s.conversation_id: s.max_seq - s.read_seq for s in await repo.states(user, conversation_ids)}


async def test_a_second_sync_of_200_conversations_reads_no_row(
    repo: CachedConversationRepo, registry: CollectorRegistry, invalidator: LocalInvalidator
) -> None:
    conversations = [await group(repo, 1, 2) for _ in range(200)]
    await invalidator.drain()  # the creations' delayed deletes are done
    first = await repo.states(1, conversations)
    assert [state.conversation_id for state in first] == conversations
    assert (loads(registry, "head"), loads(registry, "read")) == (1, 1)  # one loader call each for all 200
    assert await repo.states(1, conversations) == first
    assert (loads(registry, "head"), loads(registry, "read")) == (1, 1)


async def test_unread_follows_persisted_messages_and_read_marks(
    repo: CachedConversationRepo, engine: AsyncEngine, caches: ChatCaches
) -> None:
    cid = await group(repo, 1, 2)
    assert await unread(repo, 2, [cid]) == {cid: 0}
    await SQLMessageRepo(engine).persist([message(cid, seq) for seq in (1, 2, 3)])
    # What the persist job does after its commit.
    await caches.heads.invalidate([cid])
    assert await unread(repo, 2, [cid]) == {cid: 3}
    await repo.mark_read(cid, 2, 2)
    assert await unread(repo, 2, [cid]) == {cid: 1}
    assert await unread(repo, 1, [cid]) == {cid: 3}


async def test_states_follow_membership_changes(repo: CachedConversationRepo) -> None:
    cid = await group(repo, 1, 2)
    assert await unread(repo, 3, [cid]) == {}  # not a member: remembered as such
    await repo.add_members(cid, [3], Role.MEMBER, NOW, 100)
    assert await unread(repo, 3, [cid]) == {cid: 0}
    await repo.remove_member(cid, 3, NOW)
    assert await unread(repo, 3, [cid]) == {}


async def test_a_deleted_groups_cached_states_are_dropped(repo: CachedConversationRepo) -> None:
    cid = await group(repo, 1, 2)
    assert await unread(repo, 2, [cid]) == {cid: 0}  # cached now
    assert await repo.delete(cid, NOW) == [1, 2]
    assert await unread(repo, 2, [cid]) == {}
    assert await unread(repo, 1, [cid]) == {}


async def test_a_conversation_created_after_it_was_asked_for_shows_up(repo: CachedConversationRepo) -> None:
    cid = new_id()
    assert await repo.states(1, [cid]) == []
    await repo.create(Conversation(cid, Kind.GROUP, "g", 1, 0, None, NOW, NOW, 1), [Member(cid, 1, Role.OWNER, 0, NOW)])
    assert [state.conversation_id for state in await repo.states(1, [cid])] == [cid]
