"""The cache contract on the real Redis (keys under a unique prefix, deleted afterwards)."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from tests.contracts.cache import CacheStoreContract
from tidings.pkg.cache import CacheStore, RedisStore


class TestRedisStore(CacheStoreContract):
    @pytest.fixture
    def prefix(self, redis_prefix: str) -> str:
        return redis_prefix

    @pytest.fixture
    def store(self, redis_client: redis.Redis) -> CacheStore:
        return RedisStore(redis_client, batch_size=100)
