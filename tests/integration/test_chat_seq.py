"""The seq allocator contract on Redis with its blocks leased from MariaDB, including Redis losing all its data
(a FLUSHALL mid-stream, and a restart that reloads a stale cursor)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_seq import SharedOrderContract
from tests.integration.conftest import REDIS_URL, unique
from tidings.service.chat.biz.ports import SeqAllocator
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.seq import RedisSeqAllocator, SQLSeqLease


async def delete_keys(client: redis.Redis, prefix: str) -> int:
    """Every key of one test's namespace. The allocator's state is exactly these keys, so this is what
    FLUSHALL does to it, without wiping what other tests keep on the shared Redis."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
    return int(await client.delete(*keys)) if keys else 0


@pytest.fixture
async def engine(mysql_engine: AsyncEngine) -> AsyncEngine:
    return mysql_engine


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    yield client
    await client.aclose()


class TestRedisSeqAllocator(SharedOrderContract):
    @pytest.fixture(autouse=True)
    async def _stores(self, lease: SQLSeqLease, metrics: ChatMetrics, redis_client: redis.Redis) -> AsyncIterator[None]:
        self._lease, self._metrics, self._redis = lease, metrics, redis_client
        self._prefix = unique("it.seq")
        yield
        await delete_keys(redis_client, self._prefix)

    def allocator(self) -> SeqAllocator:
        return RedisSeqAllocator(self._redis, self._lease, self._metrics, prefix=self._prefix)

    async def lose_cache(self, allocators: list[SeqAllocator]) -> list[SeqAllocator]:
        assert await delete_keys(self._redis, self._prefix) > 0
        return allocators

    async def test_a_block_from_before_a_redis_restart_is_never_used_again(self, engine: AsyncEngine) -> None:
        """A restart that reloads an old snapshot brings back a rolled-back cursor; the run id voids it."""
        cid = await self.conversation(engine)
        allocator = self.allocator()
        handed = await allocator.allocate(cid, 10)
        key = f"{self._prefix}:{{{cid}}}:seq"
        # What an older snapshot would hold: the same block with its cursor back at the start, from another run.
        await self._redis.hset(key, mapping={"next": handed[0], "run": "0" * 40})
        after = await allocator.allocate(cid, 3)
        assert min(after) > max(handed)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[redis.Redis]:
    """A Redis server of this test alone (same binary as the stack's), so FLUSHALL wipes nobody else's data."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=5)
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    await client.ping()
                    break
                except redis.ConnectionError:
                    await asyncio.sleep(0.05)
        yield client
    finally:
        await client.aclose()
        process.terminate()
        await process.wait()


class TestRedisSeqAllocatorAcrossFlushall(SharedOrderContract):
    """The same contract where losing the cache is a real FLUSHALL (of a private server)."""

    @pytest.fixture(autouse=True)
    def _stores(self, lease: SQLSeqLease, metrics: ChatMetrics, private_redis: redis.Redis) -> None:
        self._lease, self._metrics, self._redis = lease, metrics, private_redis

    def allocator(self) -> SeqAllocator:
        return RedisSeqAllocator(self._redis, self._lease, self._metrics)

    async def lose_cache(self, allocators: list[SeqAllocator]) -> list[SeqAllocator]:
        await self._redis.flushall()
        return allocators
