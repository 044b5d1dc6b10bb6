"""Integration tests talk to the real middleware started by ``./scripts/stack up`` on 127.0.0.1.

They never skip: if a service is not there, the test fails and says which one. Addresses can be moved
with ``TIDINGS_TEST_*`` variables. Each test gets its own database, topic or index, removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as redis
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.integration.redis_server import RedisServer
from tidings import migrations
from tidings.pkg import db
from tidings.pkg.bus import BusError
from tidings.pkg.bus.kafka import KafkaEventBus
from tidings.pkg.conf import DatabaseConf
from tidings.pkg.rediscluster import cluster_client

MYSQL_URL = os.environ.get("TIDINGS_TEST_MYSQL_URL", "mysql+aiomysql://tidings:tidings@127.0.0.1:3306")
REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# One node of the Redis Cluster started by ./scripts/redis-cluster up (7001-7006); the client finds the others.
REDIS_CLUSTER_URL = os.environ.get("TIDINGS_TEST_REDIS_CLUSTER_URL", "redis://127.0.0.1:7001")
KAFKA_BOOTSTRAP = os.environ.get("TIDINGS_TEST_KAFKA", "127.0.0.1:9092")
# The three brokers started by ./scripts/kafka-cluster up (9192-9194).
KAFKA_CLUSTER_BOOTSTRAP = os.environ.get("TIDINGS_TEST_KAFKA_CLUSTER", "127.0.0.1:9192,127.0.0.1:9193,127.0.0.1:9194")
OPENSEARCH_URL = os.environ.get("TIDINGS_TEST_OPENSEARCH_URL", "http://127.0.0.1:9200")
PROMETHEUS_URL = os.environ.get("TIDINGS_TEST_PROMETHEUS_URL", "http://127.0.0.1:9090")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def mysql_url() -> AsyncIterator[str]:
    """The URL of a fresh, empty MariaDB database, dropped after the test."""
    name = unique("tidings_test")
    server = create_async_engine(MYSQL_URL)
    try:
        async with server.begin() as conn:
            await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        yield f"{MYSQL_URL}/{name}"
    finally:
        async with server.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        await server.dispose()


@pytest.fixture
async def mysql_engine(mysql_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database with every migration applied."""
    await migrations.upgrade(mysql_url)
    engine = db.create_engine(DatabaseConf(url=mysql_url))
    yield engine
    await engine.dispose()


@pytest.fixture
async def statements(mysql_url: str, mysql_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The autocommit engine on ``mysql_engine``'s (migrated) database (``Infra.statements_engine``)."""
    engine = db.create_engine(DatabaseConf(url=mysql_url), autocommit=True)
    yield engine
    await engine.dispose()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A Redis server of this test alone, which it may stop, freeze and start again (never the shared one)."""
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def private_redis(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    """A client of ``redis_server``, the test's own Redis, which it may flush."""
    client = redis_server.client()
    yield client
    await client.aclose()


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.Redis]:
    """A client of the stack's Redis."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: redis.Redis) -> AsyncIterator[str]:
    """A key prefix of the test's own; every key under it is deleted afterwards."""
    prefix = unique("t")
    yield prefix
    await delete_prefix(redis_client, prefix)


@pytest.fixture
async def redis_cluster() -> AsyncIterator[redis.Redis]:
    """A client of the Redis Cluster of ``scripts/redis-cluster`` (``make test`` starts it), typed as the adapters
    take it (``tidings.pkg.rediscluster``). Like every service here, a cluster that is not there fails the test."""
    client = cluster_client(REDIS_CLUSTER_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        await cast(redis.RedisCluster, client).initialize()
        info = await client.cluster_info()
    except redis.RedisError as exc:
        await client.aclose()
        pytest.fail(f"no Redis Cluster at {REDIS_CLUSTER_URL} ({exc!r}): run ./scripts/redis-cluster up")
    if info.get("cluster_state") != "ok":
        await client.aclose()
        pytest.fail(f"the Redis Cluster at {REDIS_CLUSTER_URL} is not ok ({info}): run ./scripts/redis-cluster up")
    yield client
    await client.aclose()


@pytest.fixture
async def redis_cluster_prefix(redis_cluster: redis.Redis) -> AsyncIterator[str]:
    """A key prefix of the test's own on the cluster; every key under it is deleted afterwards."""
    prefix = unique("t")
    yield prefix
    await delete_prefix(redis_cluster, prefix)


async def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix``; how many there were. On a cluster the client SCANs every primary and
    deletes per slot."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    return int(await client.delete(*keys)) if keys else 0


@pytest.fixture
async def kafka_prefix() -> AsyncIterator[str]:
    """A topic name prefix of the test's own; every topic under it is deleted afterwards."""
    prefix = unique("it")
    yield prefix
    await delete_topics(prefix)


async def delete_topics(prefix: str, bootstrap: str = KAFKA_BOOTSTRAP) -> None:
    """Delete every topic whose name starts with ``prefix``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    async with asyncio.timeout(30):
        await admin.start()
        try:
            ours = [topic for topic in await admin.list_topics() if topic.startswith(prefix)]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()


KafkaBusFactory = Callable[..., Awaitable[KafkaEventBus]]


@asynccontextmanager
async def buses(bootstrap: str, **defaults: Any) -> AsyncIterator[KafkaBusFactory]:
    """Opens started buses on ``bootstrap`` (keyword arguments: ``KafkaEventBus`` options over ``defaults``), closed
    at the end. Short heartbeats by default, so that a group member joining or leaving is noticed in about a second.
    Like every service here, brokers that are not there fail the test."""
    opened: list[KafkaEventBus] = []

    async def open_bus(**options: Any) -> KafkaEventBus:
        options = {"timeout_s": 10, "session_timeout_ms": 6_000, "heartbeat_interval_ms": 300, **defaults, **options}
        bus = KafkaEventBus(bootstrap, **options)
        try:
            await bus.start()
        except BusError as exc:
            pytest.fail(f"no Kafka at {bootstrap} ({exc}): run ./scripts/stack up or ./scripts/kafka-cluster up")
        opened.append(bus)
        return bus

    try:
        yield open_bus
    finally:
        for bus in opened:
            await bus.close()


@pytest.fixture
async def kafka_bus() -> AsyncIterator[KafkaBusFactory]:
    """Opens started buses on the stack's Kafka (see ``buses``)."""
    async with buses(KAFKA_BOOTSTRAP) as open_bus:
        yield open_bus


@pytest.fixture
async def kafka_cluster_prefix() -> AsyncIterator[str]:
    """A topic name prefix of the test's own on the Kafka cluster; every topic under it is deleted afterwards."""
    prefix = unique("it")
    yield prefix
    await delete_topics(prefix, KAFKA_CLUSTER_BOOTSTRAP)


@pytest.fixture
async def kafka_cluster_bus() -> AsyncIterator[KafkaBusFactory]:
    """Opens started buses on the Kafka cluster of ``scripts/kafka-cluster`` (``make test`` starts it), creating
    topics as configs/cluster.yaml does: 3 replicas, 2 in sync."""
    async with buses(KAFKA_CLUSTER_BOOTSTRAP, replication_factor=3, min_insync_replicas=2) as open_bus:
        yield open_bus
