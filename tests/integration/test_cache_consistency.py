"""Cache-aside on the real MariaDB and Redis: the staleness bound under concurrent readers and writers, one load
for a thousand concurrent misses, and degradation with a (private) Redis stopped and started again."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.conftest import delete_prefix, unique
from tests.integration.redis_server import RedisServer
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, RedisStore
from tidings.pkg.cache.kit import CacheKit
from tidings.service.account.biz.profiles import Profiles
from tidings.service.account.biz.user import Account, ProfileChange
from tidings.service.account.data.repos import SQLBlockRepo, SQLUserRepo
from tidings.service.account.user import User
from tidings.service.account.wire import profile_cache
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.model import Conversation, Kind, Member, Role
from tidings.service.chat.data.caches import chat_caches
from tidings.service.chat.data.conversations import CachedConversationRepo, SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.message import Message

# The second delete runs this long after a write; a reader may see an older value for at most this long.
DELAY_S = 0.3
# Scheduling slack of one event loop running 50 busy tasks (a timer fires a little late, never early).
SLACK_S = 0.2


class Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def kit(client: redis.Redis, registry: CollectorRegistry) -> CacheKit:
    store = RedisStore(client, batch_size=100, timeout_s=0.3)
    policy = CachePolicy(ttl_s=60, null_ttl_s=10, fill_deadline_s=DELAY_S / 2, retry_after_s=0.2)
    return CacheKit(store, LocalInvalidator(store, delay_s=DELAY_S), CacheMetrics(registry, "it"), policy)


def newest_before(history: list[tuple[float, int]], started: float) -> int:
    """The newest value of ``(time the write returned, value)`` written more than the bound before ``started``."""
    return max(value for at, value in history if at <= started - DELAY_S - SLACK_S)


async def race(
    writer: Callable[[], Awaitable[None]], reader: Callable[[], Awaitable[None]], client: redis.Redis, prefix: str
) -> None:
    """25 writers and 25 readers until they stop; the test's keys are deleted afterwards."""
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(25):
                group.create_task(writer())
                group.create_task(reader())
    finally:
        await delete_prefix(client, prefix)


def assert_hits(registry: CollectorRegistry, *caches: str) -> None:
    for cache in caches:
        hits = registry.get_sample_value("tidings_it_cache_requests_total", {"cache": cache, "result": "hit"})
        assert hits is not None
        assert hits > 0, f"{cache}: the cache served no read meanwhile"


async def make_users(users: SQLUserRepo, count: int) -> list[int]:
    ids = [random.randrange(10**12, 10**15) for _ in range(count)]
    for user_id in ids:
        user = User(user_id, f"u{user_id}", "v0", "", "", 1)
        await users.create(Account(user, "x", False, 0))
    return ids


async def test_no_stale_read_beyond_the_bound_under_50_readers_and_writers(
    mysql_engine: AsyncEngine, redis_client: redis.Redis
) -> None:
    prefix = unique("it.cache")
    users = SQLUserRepo(mysql_engine)
    ids = await make_users(users, 5)
    registry = CollectorRegistry()
    # Two account instances: one Redis, each its own singleflight.
    instances = [
        Profiles(users, SQLBlockRepo(mysql_engine), Clock(), profile_cache(kit(redis_client, registry), prefix))
        for _ in range(2)
    ]
    # completed[user] = [(monotonic time the write returned, version)], versions increase per user.
    completed: dict[int, list[tuple[float, int]]] = {user: [(0.0, 0)] for user in ids}
    locks = {user: asyncio.Lock() for user in ids}
    violations: list[str] = []
    reads = 0
    stop_at = time.monotonic() + 3.0

    async def writer() -> None:
        while time.monotonic() < stop_at:
            user = random.choice(ids)
            async with locks[user]:
                version = completed[user][-1][1] + 1
                await random.choice(instances).update(user, ProfileChange(display_name=f"v{version}"))
                completed[user].append((time.monotonic(), version))
            await asyncio.sleep(random.uniform(0, 0.02))

    async def reader() -> None:
        nonlocal reads
        while time.monotonic() < stop_at:
            user = random.choice(ids)
            started = time.monotonic()
            must_see = newest_before(completed[user], started)
            seen = int((await random.choice(instances).get(user)).display_name[1:])
            reads += 1
            if seen < must_see:
                violations.append(f"user {user}: read v{seen}, v{must_see} was written > {DELAY_S}s before")

    await race(writer, reader, redis_client, prefix)
    assert reads > 100
    assert violations == []
    assert_hits(registry, "profile")


async def test_conversation_states_are_never_stale_beyond_the_bound_under_50_readers_and_writers(
    mysql_engine: AsyncEngine, redis_client: redis.Redis
) -> None:
    """What unread counts are made of: heads moved by stored messages (the persist job's invalidation) and read marks
    moved by members, read through the cache by two chat instances."""
    prefix = unique("it.states")
    registry = CollectorRegistry()
    caches = [chat_caches(kit(redis_client, registry), prefix) for _ in range(2)]
    instances = [CachedConversationRepo(mysql_engine, instance) for instance in caches]
    now = Clock().now_ms()
    members = [1, 2, 3]
    cids = [random.randrange(10**12, 10**15) for _ in range(4)]
    for cid in cids:
        rows = [Member(cid, user, Role.MEMBER, 0, now) for user in members]
        await instances[0].create(Conversation(cid, Kind.GROUP, "g", 1, 0, None, now, now, len(members)), rows)
    stored = SQLMessageRepo(mysql_engine)
    # (monotonic time the write returned, value): max seq per conversation, read seq per (conversation, member).
    heads: dict[int, list[tuple[float, int]]] = {cid: [(0.0, 0)] for cid in cids}
    marks: dict[tuple[int, int], list[tuple[float, int]]] = {(c, u): [(0.0, 0)] for c in cids for u in members}
    locks = {cid: asyncio.Lock() for cid in cids}
    violations: list[str] = []
    reads = 0
    stop_at = time.monotonic() + 3.0

    async def writer() -> None:
        while time.monotonic() < stop_at:
            cid = random.choice(cids)
            async with locks[cid]:
                seq = heads[cid][-1][1]
                if random.random() < 0.5 or seq == 0:
                    seq += 1
                    message = Message(random.randrange(10**15, 10**17), cid, seq, 1, f"c{cid}-{seq}", "t", now + seq)
                    await stored.persist([message])
                    # What the persist job does after its commit.
                    await random.choice(caches).heads.invalidate([cid])
                    heads[cid].append((time.monotonic(), seq))
                else:
                    user = random.choice(members)
                    await random.choice(instances).mark_read(cid, user, seq)
                    marks[(cid, user)].append((time.monotonic(), seq))
            await asyncio.sleep(random.uniform(0, 0.02))

    async def reader() -> None:
        nonlocal reads
        while time.monotonic() < stop_at:
            user = random.choice(members)
            started = time.monotonic()
            wanted = {
                cid: (newest_before(heads[cid], started), newest_before(marks[(cid, user)], started)) for cid in cids
            }
            for state in await random.choice(instances).states(user, cids):
                reads += 1
                max_seq, read_seq = wanted[state.conversation_id]
                if state.max_seq < max_seq or state.read_seq < read_seq:
                    violations.append(
                        f"{state.conversation_id}/{user}: read ({state.max_seq}, {state.read_seq}), "
                        f"({max_seq}, {read_seq}) was written > {DELAY_S}s before"
                    )

    await race(writer, reader, redis_client, prefix)
    assert reads > 100
    assert violations == []
    assert_hits(registry, "head", "read")


async def test_one_load_for_a_thousand_concurrent_misses_on_mariadb(
    mysql_engine: AsyncEngine, redis_client: redis.Redis
) -> None:
    prefix = unique("it.cache")
    users = SQLUserRepo(mysql_engine)
    (user_id,) = await make_users(users, 1)
    registry = CollectorRegistry()
    profiles = Profiles(users, SQLBlockRepo(mysql_engine), Clock(), profile_cache(kit(redis_client, registry), prefix))
    try:
        results = await asyncio.gather(*(profiles.get(user_id) for _ in range(1000)))
    finally:
        await delete_prefix(redis_client, prefix)
    assert {user.id for user in results} == {user_id}
    assert registry.get_sample_value("tidings_it_cache_loads_total", {"cache": "profile"}) == 1


class CountingUsers(SQLUserRepo):
    loads = 0

    async def get_many(self, user_ids: list[int]) -> list[User]:
        # The profile cache's loader (one user or many).
        self.loads += 1
        return await super().get_many(user_ids)


async def test_with_redis_stopped_reads_fall_back_to_the_database_and_refill_after(
    mysql_engine: AsyncEngine, redis_server: RedisServer
) -> None:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=0.5, socket_connect_timeout=0.5)
    registry = CollectorRegistry()
    caches = kit(client, registry)
    users = CountingUsers(mysql_engine)
    (user_id,) = await make_users(users, 1)
    profiles = Profiles(users, SQLBlockRepo(mysql_engine), Clock(), profile_cache(caches, "p"))
    conversations = SQLConversationRepo(mysql_engine)
    chat = chat_caches(caches, "c")
    access = Access(conversations, BlockFree(), gates=chat.gates, blocks=chat.blocks)
    cid = random.randrange(10**12, 10**15)
    now = Clock().now_ms()
    await conversations.create(
        Conversation(cid, Kind.GROUP, "g", user_id, 0, None, now, now, 1), [Member(cid, user_id, Role.OWNER, 0, now)]
    )
    try:
        assert (await profiles.get(user_id)).display_name == "v0"
        assert (await access.gate(cid, user_id)).kind is Kind.GROUP
        assert users.loads == 1
        await redis_server.stop()

        # Down: every read still answers, from the database; writes still succeed; nothing is raised.
        for _ in range(3):
            assert (await profiles.get(user_id)).display_name == "v0"
            assert (await access.gate(cid, user_id)).kind is Kind.GROUP
        assert (await profiles.update(user_id, ProfileChange(display_name="v1"))).display_name == "v1"
        assert (await profiles.get(user_id)).display_name == "v1"
        assert users.loads >= 4
        errors = registry.get_sample_value("tidings_it_cache_errors_total", {"cache": "profile", "op": "get"})
        assert errors is not None
        assert errors >= 1

        # Back (empty: it kept nothing): after the pause the caches refill and serve hits again.
        await redis_server.start()
        await asyncio.sleep(0.3)  # past retry_after_s
        assert (await profiles.get(user_id)).display_name == "v1"
        loads = users.loads
        for _ in range(5):
            assert (await profiles.get(user_id)).display_name == "v1"
            assert (await access.gate(cid, user_id)).kind is Kind.GROUP
        assert users.loads == loads
        assert await client.exists(f"p:profile:{user_id}") == 1
    finally:
        await client.aclose()


class BlockFree:
    async def existing(self, user_ids: list[int]) -> set[int]:
        return set(user_ids)

    async def blocked(self, user_a: int, user_b: int) -> bool:
        return False
