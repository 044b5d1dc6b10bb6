"""The Redis contract suites again, on a Redis Cluster of three masters and three replicas (``scripts/redis-cluster``):
the cache store, the route table, the seq allocator and the rate limiter pass on it as they do on one Redis. A
command or script over keys of two slots is refused by the cluster (CROSSSLOT), so every test here that passes also
shows that each adapter keeps a script's keys in one slot, and that its keys do spread over the nodes."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import cast

import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from redis.crc import key_slot
from redis.exceptions import RedisClusterException
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.cache import CacheStoreContract
from tests.contracts.chat_seq import (
    BlockLeaseContract,
    SeqAdapter,
    SeqAllocatorContract,
    SharedOrderContract,
    conversations_in,
)
from tests.contracts.ratelimit import RateLimiterContract
from tests.contracts.routes import TTL_S, RouteTableContract
from tests.integration.conftest import REDIS_CLUSTER_URL, delete_prefix
from tests.integration.test_chat_seq import FakeClock as SeqClock
from tests.integration.test_chat_seq import redis_seqs
from tidings.bench.system import free_port
from tidings.bootstrap import Infra
from tidings.conf import Settings
from tidings.job.biz.errors import Unavailable
from tidings.job.data.routes import RouteTableLookup
from tidings.pkg.cache import CacheStore, RedisStore
from tidings.pkg.cache.breaker import Breaker
from tidings.pkg.clock import FakeClock
from tidings.pkg.conf import CacheConf
from tidings.pkg.ratelimit import Rate
from tidings.pkg.ratelimit.redis import RedisRateLimiter
from tidings.pkg.rediscluster import cluster_client, is_cluster, mget, slot_groups
from tidings.realtime.model import Route
from tidings.realtime.routes import RedisRouteTable
from tidings.service.chat.biz.ports import SeqAllocator
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.seq import RedisSeqAllocator, SQLSeqLease
from tidings.service.chat.message import Message
from tidings.service.chat.store.history import RedisHistoryCache


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def masters_holding(client: redis.Redis, keys: list[str]) -> set[str]:
    """The names of the masters that serve ``keys``' slots."""
    cluster = cast(redis.RedisCluster, client)
    return {cluster.get_node_from_key(key).name for key in keys}


async def test_the_cluster_refuses_a_script_over_two_slots(
    redis_cluster: redis.Redis, redis_cluster_prefix: str
) -> None:
    """What every suite below would meet if an adapter put keys of two slots in one script call."""
    first, second = f"{redis_cluster_prefix}:{{1}}:a", f"{redis_cluster_prefix}:{{2}}:a"
    assert key_slot(first.encode()) != key_slot(second.encode())
    # redis-py refuses it before sending (Redis would answer CROSSSLOT).
    with pytest.raises(RedisClusterException):
        await redis_cluster.eval("return 1", 2, first, second)
    assert is_cluster(redis_cluster)
    assert len(slot_groups(redis_cluster, [first, second, first])) == 2


async def test_mget_splits_per_slot_and_keeps_the_order(redis_cluster: redis.Redis, redis_cluster_prefix: str) -> None:
    keys = [f"{redis_cluster_prefix}:k{n}" for n in range(50)]
    assert len(masters_holding(redis_cluster, keys)) == 3
    await redis_cluster.set(keys[7], b"seven")
    await redis_cluster.set(keys[42], b"forty-two")
    values = await mget(redis_cluster, keys)
    assert [(n, v) for n, v in enumerate(values) if v is not None] == [(7, b"seven"), (42, b"forty-two")]


class TestRedisStoreOnCluster(CacheStoreContract):
    @pytest.fixture
    def prefix(self, redis_cluster_prefix: str) -> str:
        return redis_cluster_prefix

    @pytest.fixture
    def store(self, redis_cluster: redis.Redis) -> CacheStore:
        return RedisStore(redis_cluster, batch_size=100)


async def test_a_batch_of_the_store_spreads_over_every_master(
    redis_cluster: redis.Redis, redis_cluster_prefix: str
) -> None:
    store = RedisStore(redis_cluster, batch_size=256)
    keys = [f"{redis_cluster_prefix}:profile:{n}" for n in range(300)]
    await store.set_many([(key, str(n).encode(), 60.0) for n, key in enumerate(keys)])
    assert await store.get_many(keys) == [str(n).encode() for n in range(300)]
    sizes = [await node.execute_command("DBSIZE") for node in cast(redis.RedisCluster, redis_cluster).get_primaries()]
    assert all(size > 0 for size in sizes), sizes
    await store.delete_many(keys)
    assert await store.get_many(keys) == [None] * 300


class TestRedisRouteTableOnCluster(RouteTableContract):
    @pytest.fixture
    def table(self, redis_cluster: redis.Redis, redis_cluster_prefix: str, clock: FakeClock) -> RedisRouteTable:
        return RedisRouteTable(redis_cluster, ttl_s=TTL_S, prefix=redis_cluster_prefix, clock=clock)


async def test_routes_of_many_users_are_written_and_swept_across_the_masters(
    redis_cluster: redis.Redis, redis_cluster_prefix: str
) -> None:
    clock = FakeClock()
    table = RedisRouteTable(redis_cluster, ttl_s=TTL_S, prefix=redis_cluster_prefix, clock=clock)
    users = list(range(1, 61))
    assert len(masters_holding(redis_cluster, [table.user_key(user) for user in users])) == 3
    assert await table.touch([Route(user, "s1", "10.0.0.1:9080") for user in users]) == users
    assert set(await table.routes_for(users)) == set(users)
    clock.advance(s=TTL_S + 1)
    assert sorted(await table.sweep(limit=1000)) == users
    assert await table.routes_for(users) == {}


class TestRedisSeqAllocatorOnCluster(SeqAllocatorContract, SharedOrderContract, BlockLeaseContract):
    @pytest.fixture
    def adapter(
        self,
        redis_cluster: redis.Redis,
        redis_cluster_prefix: str,
        mysql_engine: AsyncEngine,
        registry: CollectorRegistry,
    ) -> SeqAdapter:
        async def lose_cache(allocators: list[SeqAllocator]) -> list[SeqAllocator]:
            assert await delete_prefix(redis_cluster, redis_cluster_prefix) > 0
            return allocators

        return redis_seqs(redis_cluster, mysql_engine, registry, lose_cache, prefix=redis_cluster_prefix)


class TestRedisRateLimiterOnCluster(RateLimiterContract):
    @pytest.fixture
    def limiter(self, redis_cluster: redis.Redis, redis_cluster_prefix: str) -> RedisRateLimiter:
        return RedisRateLimiter(redis_cluster, prefix=redis_cluster_prefix)


async def test_hits_on_keys_of_every_master_share_round_trips(
    redis_cluster: redis.Redis, redis_cluster_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_cluster, prefix=redis_cluster_prefix)
    keys = [f"user-{n}" for n in range(30)]
    assert len(masters_holding(redis_cluster, [f"{redis_cluster_prefix}:{key}" for key in keys])) == 3
    verdicts = await asyncio.gather(*(limiter.hit(key, Rate(per_s=1, burst=2)) for key in keys * 3))
    assert Counter(key for key, v in zip(keys * 3, verdicts, strict=True) if v.allowed) == Counter(keys * 2)


async def test_the_recent_windows_and_max_seqs_of_many_conversations(
    redis_cluster: redis.Redis, redis_cluster_prefix: str
) -> None:
    """The persist job's batch spans conversations on every master; each conversation's keys share its slot."""
    history = RedisHistoryCache(redis_cluster, prefix=redis_cluster_prefix, window=3)
    conversations = list(range(100, 130))
    assert len(masters_holding(redis_cluster, [history.max_seq_key(cid) for cid in conversations])) == 3
    assert all(
        key_slot(history.max_seq_key(cid).encode()) == key_slot(history.recent_key(cid).encode())
        for cid in conversations
    )
    batch = [
        Message(cid * 10 + seq, cid, seq, 1, f"{cid}-{seq}", f"m{seq}", 1)
        for cid in conversations
        for seq in range(1, 6)
    ]
    await history.record(batch, stale=conversations[:3])
    assert await history.max_seqs(conversations) == dict.fromkeys(conversations, 5)
    assert [len(await history.recent(cid)) for cid in conversations] == [3] * len(conversations)
    await history.forget_max_seqs(conversations)
    assert await history.max_seqs(conversations) == {}


async def test_the_infra_of_a_cluster_config_serves_the_caches_from_the_cluster(
    redis_cluster: redis.Redis, redis_cluster_prefix: str
) -> None:
    """``cache.cluster`` (configs/cluster.yaml): the modules' Redis client is a cluster client, ready, and what the
    modules build on it (the rate limiter, the route table) works across its slots."""
    settings = Settings(cache=CacheConf(url=REDIS_CLUSTER_URL, cluster=True))
    infra = Infra(settings)
    try:
        client = infra.redis()
        assert is_cluster(client)
        await infra.redis_check().probe()
        limiter = infra.rate_limiter(redis_cluster_prefix)
        verdicts = await asyncio.gather(*(limiter.hit(f"k{n}", Rate(per_s=1, burst=1)) for n in range(20)))
        assert all(verdict.allowed for verdict in verdicts)
    finally:
        await infra.close()


async def test_scripts_the_masters_forgot_are_loaded_again_where_their_keys_live(
    redis_cluster: redis.Redis, redis_cluster_prefix: str
) -> None:
    """A restarted or failed-over master knows no script: the pipelined calls (``Script``) and redis-py's own
    scripts (the sweep's claim) load it again on the node that answered NOSCRIPT and go on."""
    clock = FakeClock()
    store = RedisStore(redis_cluster, batch_size=256)
    table = RedisRouteTable(redis_cluster, ttl_s=TTL_S, prefix=redis_cluster_prefix, clock=clock)
    keys = [f"{redis_cluster_prefix}:v{n}" for n in range(30)]
    await store.set_many([(key, b"1", 60.0) for key in keys])
    assert await table.touch([Route(user, "s1", "10.0.0.1:9080") for user in range(1, 31)]) == list(range(1, 31))

    await redis_cluster.script_flush()  # every primary
    await store.set_many([(key, b"2", 60.0) for key in keys])
    assert await store.get_many(keys) == [b"2"] * 30
    clock.advance(s=TTL_S + 1)
    assert await table.sweep() == list(range(1, 31))


async def test_every_seq_block_of_the_prefix_is_found_on_every_master_and_voided(
    redis_cluster: redis.Redis, redis_cluster_prefix: str, mysql_engine: AsyncEngine, registry: CollectorRegistry
) -> None:
    """Past ``max_voided`` conversations served from the database, the allocator SCANs for its blocks: on a cluster,
    every primary's."""
    clock = SeqClock()
    breaker = Breaker(1.0, clock)
    lease, metrics = SQLSeqLease(mysql_engine), ChatMetrics(registry)
    allocator = RedisSeqAllocator(
        redis_cluster, lease, metrics, prefix=redis_cluster_prefix, breaker=breaker, max_voided=1
    )
    new_conversation = conversations_in(SQLConversationRepo(mysql_engine))
    conversations = [await new_conversation() for _ in range(12)]
    handed = {cid: await allocator.allocate(cid, 1) for cid in conversations}
    assert len(masters_holding(redis_cluster, [allocator.key(cid) for cid in conversations])) == 3
    breaker.trip()  # what the first failed call of an outage does
    for cid in conversations:
        handed[cid] += await allocator.allocate(cid, 1)  # from the database
    assert allocator.stale_blocks == -1
    clock.now += 2
    for cid in conversations:
        assert (await allocator.allocate(cid, 1))[0] > max(handed[cid])
    assert allocator.stale_blocks == 0


async def test_a_cluster_that_cannot_be_reached_counts_as_redis_down(
    mysql_engine: AsyncEngine, registry: CollectorRegistry
) -> None:
    """redis-py reports an unreachable cluster outside ``RedisError``: sends still go on from the database, and the
    push job sees a transient failure it retries, not a broken record."""
    client = cluster_client(f"redis://127.0.0.1:{free_port()}", socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        with pytest.raises(RedisClusterException):
            await client.ping()
        allocator = RedisSeqAllocator(client, SQLSeqLease(mysql_engine), ChatMetrics(registry), timeout_s=0.5)
        cid = await conversations_in(SQLConversationRepo(mysql_engine))()
        assert await allocator.allocate(cid, 3) == [1, 2, 3]  # leased straight from the database counter
        lookup = RouteTableLookup(RedisRouteTable(client))
        with pytest.raises(Unavailable):
            await lookup.routes_for([1])
    finally:
        await client.aclose()
