"""The rate limiter contract on Redis: one script per hit on one key, on Redis's own clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from tests.contracts.ratelimit import RateLimiterContract
from tests.integration.conftest import REDIS_URL, unique
from tidings.pkg.ratelimit import Rate, RedisRateLimiter


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(client: redis.Redis) -> AsyncIterator[str]:
    prefix = unique("rl")
    yield prefix
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self, client: redis.Redis, prefix: str) -> RedisRateLimiter:
        return RedisRateLimiter(client, prefix=prefix)


async def test_a_key_expires_once_its_bucket_is_full_again(client: redis.Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(client, prefix=prefix)
    await limiter.hit("k", Rate(per_s=10, burst=5))
    ttl_ms = await client.pttl(f"{prefix}:k")
    assert 0 < ttl_ms <= 102


async def test_hits_made_at_once_share_round_trips_and_each_gets_its_own_verdict(
    client: redis.Redis, prefix: str
) -> None:
    limiter = RedisRateLimiter(client, prefix=prefix)
    rate = Rate(per_s=1, burst=10)
    verdicts = await asyncio.gather(*(limiter.hit(f"user-{n % 3}", rate) for n in range(45)))
    assert sum(v.allowed for v in verdicts) == 30  # ten for each of the three keys
    assert sorted(v.remaining for v in verdicts if v.allowed) == sorted(list(range(10)) * 3)
