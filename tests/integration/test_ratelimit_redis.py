"""The rate limiter contract on Redis: one script per hit on one key, on Redis's own clock."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from tests.contracts.ratelimit import RateLimiterContract
from tidings.pkg.ratelimit import Rate
from tidings.pkg.ratelimit.redis import RedisRateLimiter


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self, redis_client: redis.Redis, redis_prefix: str) -> RedisRateLimiter:
        return RedisRateLimiter(redis_client, prefix=redis_prefix)


async def test_a_key_expires_once_its_bucket_is_full_again(redis_client: redis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    await limiter.hit("k", Rate(per_s=10, burst=5))
    ttl_ms = await redis_client.pttl(f"{redis_prefix}:k")
    assert 0 < ttl_ms <= 102


async def test_hits_made_at_once_share_round_trips_and_each_gets_its_own_verdict(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    rate = Rate(per_s=1, burst=10)
    verdicts = await asyncio.gather(*(limiter.hit(f"user-{n % 3}", rate) for n in range(45)))
    assert sum(v.allowed for v in verdicts) == 30  # ten for each of the three keys
    assert sorted(v.remaining for v in verdicts if v.allowed) == sorted(list(range(10)) * 3)
