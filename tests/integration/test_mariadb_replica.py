"""The read replica on a real MariaDB primary and GTID replica (``./scripts/mariadb-replica up``: 3316 and 3317;
``make test`` starts them): the account and chat store contracts with reads on the replica, which reads go there
and which stay on the primary, the delayed double delete against real replication lag, and reads falling back to
the primary while the replica is stopped.

Lag is made by stopping the replica's SQL thread (``scripts/mariadb-replica pause``), an outage by stopping the
replica server (``stop-replica``); every test that does either undoes it in a ``finally``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import pytest
import redis.asyncio as redis
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tests.contracts.account_repos import AccountRepos, AccountReposContract, sql_repos
from tests.contracts.chat_repos import (
    ChatStores,
    ConversationRepoContract,
    MessageRepoContract,
    conversation,
    message,
    sql_stores,
)
from tests.integration.conftest import unique
from tests.scripts import run_script
from tidings import migrations
from tidings.bootstrap import REPLICA_SYSTEM, Infra
from tidings.conf import Settings
from tidings.pkg import db
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, RedisStore
from tidings.pkg.cache.kit import CacheKit
from tidings.pkg.conf import DatabaseConf
from tidings.service.account.biz.profiles import Profiles
from tidings.service.account.biz.user import Account, ProfileChange
from tidings.service.account.data.repos import SQLBlockRepo, SQLUserRepo
from tidings.service.account.user import User
from tidings.service.account.wire import profile_cache
from tidings.service.chat.biz.model import Member, Role
from tidings.service.chat.biz.ports import Reservation
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.dedup import SQLDedupStore
from tidings.service.chat.data.messages import SQLMessageRepo

PRIMARY_URL = os.environ.get("TIDINGS_TEST_MYSQL_PRIMARY_URL", "mysql+aiomysql://tidings:tidings@127.0.0.1:3316")
REPLICA_URL = os.environ.get("TIDINGS_TEST_MYSQL_REPLICA_URL", "mysql+aiomysql://tidings:tidings@127.0.0.1:3317")
NOW = 1_700_000_000_000


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with asyncio.timeout(30), engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def caught_up(primary: AsyncEngine, replica: AsyncEngine, timeout_s: float = 20) -> None:
    """Wait until the replica has applied everything the primary has written so far (GTID)."""
    position = await scalar(primary, "SELECT @@gtid_binlog_pos")
    waited = await scalar(replica, "SELECT MASTER_GTID_WAIT(:pos, :timeout)", pos=position, timeout=timeout_s)
    assert waited == 0, f"the replica has not applied {position} after {timeout_s}s"


@dataclass
class Pair:
    """A fresh database of the test's own on the primary, replicated; engines as ``Infra`` builds them."""

    primary_url: str
    replica_url: str
    engine: AsyncEngine  # transactions, on the primary
    statements: AsyncEngine  # autocommit, on the primary
    replica: AsyncEngine  # autocommit, on the replica

    async def caught_up(self) -> None:
        await caught_up(self.engine, self.replica)

    def read_replica(self, served: list[str] | None = None, retry_after_s: float = 5.0) -> db.ReadReplica:
        return db.ReadReplica(
            self.replica, retry_after_s=retry_after_s, on_read=served.append if served is not None else None
        )


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    name = unique("tidings_test")
    server = create_async_engine(PRIMARY_URL)
    replica_server = create_async_engine(REPLICA_URL)
    try:
        try:
            async with asyncio.timeout(10), server.begin() as conn:
                await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            await scalar(replica_server, "SELECT 1")
        except Exception as exc:
            pytest.fail(
                f"no MariaDB primary and replica at {PRIMARY_URL}, {REPLICA_URL} ({exc!r}): "
                "run ./scripts/mariadb-replica up"
            )
        primary_url, replica_url = f"{PRIMARY_URL}/{name}", f"{REPLICA_URL}/{name}"
        await migrations.upgrade(primary_url)
        engine = db.create_engine(DatabaseConf(url=primary_url))
        conf = DatabaseConf(url=primary_url, replica_url=replica_url)
        statements = db.create_engine(conf, autocommit=True)
        replica = db.create_replica_engine(conf)
        try:
            await caught_up(engine, replica)
            yield Pair(primary_url, replica_url, engine, statements, replica)
        finally:
            for each in (engine, statements, replica):
                await each.dispose()
    finally:
        async with asyncio.timeout(30), server.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        await server.dispose()
        await replica_server.dispose()


@asynccontextmanager
async def replication_paused() -> AsyncIterator[None]:
    """The replica receives the primary's binlog but applies nothing (real lag) until the block ends."""
    await run_script("mariadb-replica", "pause")
    try:
        yield
    finally:
        await run_script("mariadb-replica", "resume")


class CaughtUpEngine:
    """The replica engine, whose every connection first waits until the replica applied what the primary has:
    the store contracts check what is read, not how fresh (each writes, then reads at once)."""

    def __init__(self, pair: Pair) -> None:
        self._pair = pair
        self.url: URL = pair.replica.url

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        await self._pair.caught_up()
        async with self._pair.replica.connect() as conn:
            yield conn


# ---------------------------------------------------------------- the store contracts, reads on the replica


@pytest.fixture
async def served() -> AsyncIterator[list[str]]:
    """Where each read meant for the replica was answered; none may have fallen back to the primary."""
    served: list[str] = []
    yield served
    assert "primary" not in served, "a replica read fell back to the primary: the replica did not answer"


@pytest.fixture
def repos(pair: Pair, served: list[str]) -> AccountRepos:
    replica = db.ReadReplica(cast(AsyncEngine, CaughtUpEngine(pair)), on_read=served.append)
    return sql_repos(pair.engine, pair.statements, replica)


@pytest.fixture
def stores(pair: Pair, served: list[str]) -> ChatStores:
    replica = db.ReadReplica(cast(AsyncEngine, CaughtUpEngine(pair)), on_read=served.append)
    return sql_stores(pair.engine, pair.statements, replica)


class TestReplicaAccountRepos(AccountReposContract):
    pass


class TestReplicaConversationRepo(ConversationRepoContract):
    pass


class TestReplicaMessageRepo(MessageRepoContract):
    pass


# ------------------------------------------------------------------------------------------ routing


async def test_reads_that_may_be_behind_go_to_the_replica_the_others_to_the_primary(pair: Pair) -> None:
    served: list[str] = []
    replica = pair.read_replica(served)
    conversations = SQLConversationRepo(pair.engine, statements=pair.statements, replica=replica)
    messages = SQLMessageRepo(pair.engine, statements=pair.statements, replica=replica)
    users = SQLUserRepo(pair.engine, statements=pair.statements, replica=replica)
    # Given the replica like the others: its lookups by client_msg_id must not use it.
    dedup = SQLDedupStore(pair.engine, statements=pair.statements, replica=replica)
    primary_messages = SQLMessageRepo(pair.engine, statements=pair.statements)

    group = conversation(owner=1, members=2)
    await conversations.create(
        group, [Member(group.id, 1, Role.OWNER, 0, NOW), Member(group.id, 2, Role.MEMBER, 0, NOW)]
    )
    await messages.persist([message(group.id, seq) for seq in (1, 2, 3)])
    await users.create(Account(User(7, "seven", "Seven", "", "", NOW), "hash", False, 0))
    await pair.caught_up()

    async with replication_paused():
        later = conversation(owner=1, members=1, updated_at_ms=NOW + 1)
        await conversations.create(later, [Member(later.id, 1, Role.OWNER, 0, NOW)])
        await messages.persist([message(group.id, seq) for seq in (4, 5)])
        await users.update_profile(7, ProfileChange(display_name="Seven again"), NOW + 1)
        await conversations.mark_read(group.id, 2, 5)
        sent = Reservation(message(group.id, 6, sender=2), sent=False, lease_until_ms=NOW + 1000)
        assert await dedup.reserve([sent]) == {sent.key}

        # Behind: history, the conversation list, the member list, message counts, others' profiles, search.
        assert [m.seq for m in await messages.after(group.id, 0, 10)] == [1, 2, 3]
        assert [m.seq for m in await messages.before(group.id, None, 10)] == [1, 2, 3]
        assert [c.id for c, _ in await conversations.list_for_user(1, 10, None)] == [group.id]
        assert (await messages.counts(group.id)).total == 3
        assert [u.display_name for u in await users.get_many([7])] == ["Seven"]
        assert [u.display_name for u in await users.search("seven", 5)] == ["Seven"]
        assert all(by == "replica" for by in served)
        assert len(served) == 6

        # Current: the same history without a replica, and every read that guards a write or must see one's own.
        assert [m.seq for m in await primary_messages.after(group.id, 0, 10)] == [1, 2, 3, 4, 5]
        assert await conversations.get(later.id) is not None
        assert await conversations.member(later.id, 1) is not None
        assert (await conversations.states(2, [group.id]))[0].read_seq == 5
        account = await users.get(7)
        assert account is not None
        assert account.user.display_name == "Seven again"
        assert await dedup.get_many([sent.key]) == {sent.key: sent}  # a sender's retry finds its send
        assert len(served) == 6  # none of these asked the replica

    await pair.caught_up()
    assert [m.seq for m in await messages.after(group.id, 0, 10)] == [1, 2, 3, 4, 5]
    assert {c.id for c, _ in await conversations.list_for_user(1, 10, None)} == {later.id, group.id}


# ------------------------------------------------------------------- the delayed double delete, real lag

# The second delete runs this long after a write (cache.invalidate_delay_s); a load slower than half of it is
# not stored. The replica is held back well below that half, as the bound in docs/CACHE.md requires.
DELAY_S = 2.0
# Scheduling slack: a timer fires a little late, never early.
SLACK_S = 0.3


class NoSecondDelete:
    """An invalidator that drops the second delete: the control, which must leave the stale value cached."""

    async def later(self, keys: Any, entity_id: int) -> None:
        return None


@pytest.mark.parametrize("second_delete", [True, False], ids=["double-delete", "single-delete"])
async def test_the_second_delete_removes_a_value_read_from_the_lagging_replica(
    pair: Pair, redis_client: redis.Redis, redis_prefix: str, second_delete: bool
) -> None:
    users = SQLUserRepo(pair.engine, statements=pair.statements, replica=pair.read_replica())
    await users.create(Account(User(42, "answer", "old name", "", "", NOW), "hash", False, 0))
    await pair.caught_up()

    store = RedisStore(redis_client, batch_size=100, timeout_s=1.0)
    invalidator = LocalInvalidator(store, delay_s=DELAY_S) if second_delete else NoSecondDelete()
    policy = CachePolicy(ttl_s=300, null_ttl_s=30, fill_deadline_s=DELAY_S / 2, retry_after_s=1.0)
    kit = CacheKit(store, invalidator, CacheMetrics(CollectorRegistry(), "it"), policy)
    profiles = Profiles(users, SQLBlockRepo(pair.engine), _Clock(), profile_cache(kit, redis_prefix))
    assert (await profiles.get(42)).display_name == "old name"  # cached

    async with replication_paused():
        await profiles.update(42, ProfileChange(display_name="new name"))  # commit, first delete
        written = time.monotonic()
        # A reader right after: a miss, loaded from the replica that has not applied the edit, and stored.
        assert (await profiles.get(42)).display_name == "old name"
    await pair.caught_up()
    # The replica has the edit now, but the cache still serves what was read from it before.
    assert (await profiles.get(42)).display_name == "old name"
    assert time.monotonic() - written < DELAY_S, "too slow to observe the stale value before the second delete"

    await asyncio.sleep(max(0.0, written + DELAY_S + SLACK_S - time.monotonic()))
    seen = (await profiles.get(42)).display_name
    if second_delete:
        assert seen == "new name", f"still {seen!r} {DELAY_S + SLACK_S}s after the write (docs/CACHE.md's bound)"
        await cast(LocalInvalidator, invalidator).drain()
    else:
        assert seen == "old name", "the stale value went away without the second delete: the test proves nothing"


class _Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


# ------------------------------------------------------------------------------ the replica stopped


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_reads_fall_back_to_the_primary_while_the_replica_is_stopped(pair: Pair) -> None:
    retry_after_s = 1.0
    settings = Settings(
        database=DatabaseConf(url=pair.primary_url, replica_url=pair.replica_url, replica_retry_after_s=retry_after_s)
    )
    infra = Infra(settings)
    try:
        replica = await infra.replica()
        assert replica is not None
        messages = SQLMessageRepo(await infra.engine(), statements=await infra.statements_engine(), replica=replica)
        group = conversation(owner=1, members=1)
        await SQLConversationRepo(pair.engine).create(group, [Member(group.id, 1, Role.OWNER, 0, NOW)])
        await messages.persist([message(group.id, seq) for seq in range(1, 6)])
        await pair.caught_up()

        counts: Callable[[], tuple[float, float, float, float]] = lambda: (  # noqa: E731
            _sample("tidings_db_replica_reads_total", {"served_by": "replica"}),
            _sample("tidings_db_replica_reads_total", {"served_by": "primary"}),
            _sample("tidings_db_replica_failures_total"),
            _sample("tidings_middleware_round_trips_total", {"system": REPLICA_SYSTEM}),
        )
        before = counts()
        assert len(await messages.after(group.id, 0, 10)) == 5
        on_replica = counts()
        assert on_replica[0] == before[0] + 1
        assert on_replica[3] > before[3]

        await run_script("mariadb-replica", "stop-replica")
        try:
            for _ in range(20):  # every read answers, complete, from the primary
                assert [m.seq for m in await messages.after(group.id, 0, 10)] == [1, 2, 3, 4, 5]
            stopped = counts()
            assert stopped[1] == on_replica[1] + 20
            assert stopped[0] == on_replica[0]
            # One failure per retry period at most: the first read's, and maybe one more if the loop was slow.
            assert 1 <= stopped[2] - on_replica[2] <= 2
        finally:
            await run_script("mariadb-replica", "start-replica")

        # Back: within a retry period (bounded wait), reads are the replica's again.
        deadline = time.monotonic() + retry_after_s + 15
        while True:
            await messages.after(group.id, 0, 10)
            if counts()[0] > stopped[0]:
                break
            assert time.monotonic() < deadline, "reads did not return to the restarted replica"
            await asyncio.sleep(0.2)
    finally:
        await infra.close()
