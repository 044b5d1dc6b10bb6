"""Conversation states read cache-aside on MariaDB and the real Redis: the repository contract holds with the
cache in front (keys under a unique prefix, deleted afterwards)."""

from __future__ import annotations

import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import ConversationRepoContract
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, RedisStore
from tidings.pkg.cache.kit import CacheKit
from tidings.service.chat.data.caches import chat_caches
from tidings.service.chat.data.conversations import CachedConversationRepo, SQLConversationRepo


@pytest.fixture
async def engine(mysql_engine: AsyncEngine) -> AsyncEngine:
    return mysql_engine


class TestCachedConversationRepoOnRedis(ConversationRepoContract):
    @pytest.fixture
    def repo(
        self, engine: AsyncEngine, statements: AsyncEngine, redis_client: redis.Redis, redis_prefix: str
    ) -> SQLConversationRepo:
        store = RedisStore(redis_client)
        kit = CacheKit(
            store, LocalInvalidator(store, delay_s=0.05), CacheMetrics(CollectorRegistry(), "it"), CachePolicy()
        )
        return CachedConversationRepo(engine, chat_caches(kit, redis_prefix), statements=statements)
