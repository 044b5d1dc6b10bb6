"""The reconcile task on MariaDB and the real Redis: deliberately corrupted cache entries of conversation states
(wrong values, damaged bytes, a wrong persisted max seq) are found, evicted and counted; right ones stay."""

from __future__ import annotations

import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import conversation, message
from tidings.pkg import log
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, RedisStore
from tidings.pkg.cache.codec import encode
from tidings.pkg.cache.kit import CacheKit
from tidings.pkg.clock import FakeClock
from tidings.service.chat.biz.model import Member, Role
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.store.heads import HEAD_CODEC
from tidings.service.chat.store.history import RedisHistoryCache
from tidings.service.chat.store.states import MEMBERS_CODEC, READ_CODEC
from tidings.task.biz.reconcile import Reconcile
from tidings.task.data.leases import SQLLeases
from tidings.task.data.reconcile import CachedChatStates, ReconcileMetrics, SQLConversations


async def test_corrupted_entries_are_evicted_and_counted_and_the_right_ones_stay(
    mysql_engine: AsyncEngine, redis_client: redis.Redis, redis_prefix: str
) -> None:
    repo, messages = SQLConversationRepo(mysql_engine), SQLMessageRepo(mysql_engine)
    a, b = conversation(owner=1, members=2), conversation(owner=1, members=2)
    for group in (a, b):
        await repo.create(group, [Member(group.id, 1, Role.OWNER, 0, 0), Member(group.id, 2, Role.MEMBER, 0, 0)])
    await messages.persist([message(a.id, 1), message(a.id, 2), message(b.id, 1)])
    await repo.mark_read(a.id, 2, 1)
    store = RedisStore(redis_client)
    kit = CacheKit(store, LocalInvalidator(store, delay_s=0.01), CacheMetrics(CollectorRegistry(), "it"), CachePolicy())
    history = RedisHistoryCache(redis_client, prefix=redis_prefix)
    [state_a, state_b] = await SQLConversations(mysql_engine).states([a.id, b.id])

    def key(*parts: object) -> str:
        return ":".join([redis_prefix, *(str(part) for part in parts)])

    right = {
        key(f"{{{b.id}}}", "head"): encode(HEAD_CODEC, (state_b.max_seq, state_b.updated_at_ms)),
        key(f"{{{a.id}}}", "members"): encode(MEMBERS_CODEC, (1, 2)),
        key(f"{{{a.id}}}", "read", 1): encode(READ_CODEC, 0),
        history.max_seq_key(b.id): b"1",
    }
    wrong = {
        key(f"{{{a.id}}}", "head"): encode(HEAD_CODEC, (1, state_a.updated_at_ms)),  # a lost invalidation
        key(f"{{{b.id}}}", "members"): encode(MEMBERS_CODEC, (1,)),  # a member missing
        key(f"{{{a.id}}}", "read", 2): encode(READ_CODEC, 0),  # the mark moved to 1
        key(f"{{{b.id}}}", "read", 1): b"\x00garbage",  # damaged bytes
        history.max_seq_key(a.id): b"7",  # ahead of the database
    }
    await redis_client.mset({**right, **wrong})

    clock = FakeClock(1_796_569_380_000)
    lease = SQLLeases(mysql_engine, ttl_s=30, clock=clock, holder="p1").lease("reconcile")
    assert await lease.acquire()
    registry = CollectorRegistry()
    cached = CachedChatStates(kit, history, ReconcileMetrics(registry), prefix=redis_prefix)
    reconcile = Reconcile(SQLConversations(mysql_engine), cached, lease, log.get("test"), batch=1, settle_s=0.05)

    assert await reconcile.preview() == 5
    assert await redis_client.exists(*wrong) == len(wrong)  # a dry run evicts nothing
    assert await reconcile.run() == 5
    assert await redis_client.exists(*wrong) == 0
    assert await redis_client.exists(*right) == len(right)
    for cache, count in (("head", 1), ("members", 1), ("read", 2), ("max_seq", 1)):
        assert registry.get_sample_value("tidings_task_reconcile_repaired_total", {"cache": cache}) == count
    assert await lease.load_checkpoint() == "0"  # walked to the end (one conversation a batch): starts over next
    assert await reconcile.run() == 0
