"""The seq allocator contract on Redis with its blocks leased from MariaDB, including Redis losing all its data
(a FLUSHALL mid-stream, and a restart that reloads a stale cursor), and Redis unreachable: seqs then come from
the database, and the blocks Redis held from before are never handed out afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_seq import (
    BlockLeaseContract,
    SeqAdapter,
    SeqAllocatorContract,
    SharedOrderContract,
    conversations_in,
)
from tests.integration.conftest import delete_prefix
from tests.integration.redis_server import RedisServer
from tidings.pkg.cache.breaker import Breaker
from tidings.service.chat.biz.ports import SeqAllocator
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.seq import RedisSeqAllocator, SQLSeqLease


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def redis_seqs(
    client: redis.Redis,
    engine: AsyncEngine,
    registry: CollectorRegistry,
    lose_cache: Callable[[list[SeqAllocator]], Awaitable[list[SeqAllocator]]],
    **options: Any,
) -> SeqAdapter:
    lease, metrics = SQLSeqLease(engine), ChatMetrics(registry)
    return SeqAdapter(
        lambda: RedisSeqAllocator(client, lease, metrics, **options),
        conversations_in(SQLConversationRepo(engine)),
        lose_cache,
    )


class TestRedisSeqAllocator(SeqAllocatorContract, SharedOrderContract, BlockLeaseContract):
    @pytest.fixture
    def adapter(
        self, redis_client: redis.Redis, redis_prefix: str, mysql_engine: AsyncEngine, registry: CollectorRegistry
    ) -> SeqAdapter:
        async def lose_cache(allocators: list[SeqAllocator]) -> list[SeqAllocator]:
            # The allocator's state is exactly the keys under its prefix: deleting them is what FLUSHALL does to
            # it, without wiping what other tests keep on the shared Redis.
            assert await delete_prefix(redis_client, redis_prefix) > 0
            return allocators

        return redis_seqs(redis_client, mysql_engine, registry, lose_cache, prefix=redis_prefix)

    async def test_a_block_from_before_a_redis_restart_is_never_used_again(
        self, adapter: SeqAdapter, redis_client: redis.Redis, redis_prefix: str
    ) -> None:
        """A restart that reloads an old snapshot brings back a rolled-back cursor; the run id voids it."""
        cid = await adapter.conversation()
        allocator = adapter.allocator()
        handed = await allocator.allocate(cid, 10)
        key = f"{redis_prefix}:{{{cid}}}:seq"
        # What an older snapshot would hold: the same block with its cursor back at the start, from another run.
        await redis_client.hset(key, mapping={"next": handed[0], "run": "0" * 40})
        after = await allocator.allocate(cid, 3)
        assert min(after) > max(handed)


class TestRedisSeqAllocatorAcrossFlushall(SeqAllocatorContract, SharedOrderContract, BlockLeaseContract):
    """The same contract where losing the cache is a real FLUSHALL (of a private server)."""

    @pytest.fixture
    def adapter(self, private_redis: redis.Redis, mysql_engine: AsyncEngine, registry: CollectorRegistry) -> SeqAdapter:
        async def lose_cache(allocators: list[SeqAllocator]) -> list[SeqAllocator]:
            await private_redis.flushall()
            return allocators

        return redis_seqs(private_redis, mysql_engine, registry, lose_cache)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestRedisUnreachable:
    """Sends go on while Redis is down: seqs come from the database, above everything handed out, in order."""

    @pytest.fixture(autouse=True)
    def _stores(self, mysql_engine: AsyncEngine, redis_server: RedisServer) -> None:
        self.engine, self.server = mysql_engine, redis_server
        self.registry = CollectorRegistry()
        self.lease, self.metrics = SQLSeqLease(mysql_engine), ChatMetrics(self.registry)
        self.clock = FakeClock()

    def allocator(self, client: redis.Redis, **options: Any) -> RedisSeqAllocator:
        breaker = Breaker(1.0, self.clock)
        return RedisSeqAllocator(client, self.lease, self.metrics, breaker=breaker, timeout_s=0.5, **options)

    def leased_from_database(self) -> float:
        return self.registry.get_sample_value("tidings_chat_seq_block_leases_total", {"allocator": "database"}) or 0

    async def conversation(self) -> int:
        return await conversations_in(SQLConversationRepo(self.engine))()

    async def test_a_frozen_redis_gives_way_to_the_database_and_its_old_block_is_never_used_again(self) -> None:
        cid = await self.conversation()
        ours, theirs = self.server.client(), self.server.client()
        allocator = self.allocator(ours)
        # Another chat instance that never sees the outage (it sends nothing meanwhile).
        bystander = RedisSeqAllocator(theirs, self.lease, self.metrics)
        before = await allocator.allocate(cid, 3)
        assert before == [1, 2, 3]  # the block 1-100 is in Redis now
        self.server.freeze()
        try:
            during = [*await allocator.allocate(cid, 2), *await allocator.allocate(cid, 1)]
        finally:
            self.server.thaw()
        assert during == sorted(during)
        assert min(during) > 100  # above the block Redis holds: leased from the database
        assert self.leased_from_database() == 2  # the second one did not even try Redis (breaker open)
        self.clock.now += 2  # the breaker lets Redis be tried again
        after = await allocator.allocate(cid, 2)
        assert min(after) > max(during)
        # The old block (4-100) is void for every instance, not only the one that saw the outage.
        assert (await bystander.allocate(cid, 1))[0] > max(after)
        await ours.aclose()
        await theirs.aclose()

    async def test_the_old_block_is_voided_when_redis_is_back_even_if_nothing_more_is_sent_there(self) -> None:
        cid = await self.conversation()
        ours, theirs = self.server.client(), self.server.client()
        allocator = self.allocator(ours)
        bystander = RedisSeqAllocator(theirs, self.lease, self.metrics)
        await allocator.allocate(cid, 1)
        self.server.freeze()
        try:
            during = await allocator.allocate(cid, 1)
        finally:
            self.server.thaw()
        self.clock.now += 2
        async with asyncio.timeout(30):
            # Polling on purpose: the void runs in the background once Redis answers, and announces nothing.
            while allocator.stale_blocks:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert (await bystander.allocate(cid, 1))[0] > max(during)
        await ours.aclose()
        await theirs.aclose()

    async def test_a_stopped_redis_that_comes_back_empty_reuses_no_seq(self) -> None:
        cid = await self.conversation()
        client = self.server.client(timeout_s=0.5)
        allocator = self.allocator(client)
        before = await allocator.allocate(cid, 5)
        await self.server.stop()
        during = await allocator.allocate(cid, 3)
        await self.server.start()
        self.clock.now += 2
        after = await allocator.allocate(cid, 3)
        every = before + during + after
        assert every == sorted(every)
        assert len(set(every)) == len(every)
        await client.aclose()

    async def test_too_many_conversations_to_name_void_every_block(self) -> None:
        first, second = await self.conversation(), await self.conversation()
        client = self.server.client()
        allocator = self.allocator(client, max_voided=1)
        handed = {cid: await allocator.allocate(cid, 1) for cid in (first, second)}
        self.server.freeze()
        try:
            for cid in (first, second):
                handed[cid] += await allocator.allocate(cid, 1)
        finally:
            self.server.thaw()
        self.clock.now += 2
        for cid in (first, second):
            fresh = await allocator.allocate(cid, 1)
            assert fresh[0] > max(handed[cid])
        await client.aclose()
