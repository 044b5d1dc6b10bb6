"""Conversation states read cache-aside on MariaDB and the real Redis: the repository contract holds with the
cache in front (keys under a unique prefix, deleted afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import ConversationRepoContract
from tests.integration.conftest import REDIS_URL, delete_prefix, unique
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, RedisStore
from tidings.pkg.cache.kit import CacheKit
from tidings.service.chat.data.caches import chat_caches
from tidings.service.chat.data.conversations import CachedConversationRepo, SQLConversationRepo


@pytest.fixture
async def engine(mysql_engine: AsyncEngine) -> AsyncEngine:
    return mysql_engine


class TestCachedConversationRepoOnRedis(ConversationRepoContract):
    @pytest.fixture
    async def repo(self, engine: AsyncEngine, statements: AsyncEngine) -> AsyncIterator[SQLConversationRepo]:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        prefix = unique("it.states")
        store = RedisStore(client)
        kit = CacheKit(
            store, LocalInvalidator(store, delay_s=0.05), CacheMetrics(CollectorRegistry(), "it"), CachePolicy()
        )
        yield CachedConversationRepo(engine, chat_caches(kit, prefix), statements=statements)
        await delete_prefix(client, prefix)
        await client.aclose()
