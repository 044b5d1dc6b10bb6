"""Composition root of the chat service: builds data -> biz -> service -> server.

The seq allocator follows ``cache.url`` (``Infra.on_redis``): Redis (every instance shares one sequence per
conversation) or, for the embedded mode, this process's memory. Both lease their blocks from the database.
"""

from __future__ import annotations

import redis.asyncio as redis
from prometheus_client import REGISTRY, CollectorRegistry

from tidings.api.chat.v1 import chat_pb2, chat_pb2_grpc
from tidings.bootstrap import Infra
from tidings.pkg import log, module
from tidings.pkg.app import Module
from tidings.pkg.bus import events
from tidings.pkg.clock import SystemClock
from tidings.pkg.health import Check
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.conversations import Conversations
from tidings.service.chat.biz.messages import Messages
from tidings.service.chat.biz.ports import ConversationRepo, HistoryCache, SeqAllocator
from tidings.service.chat.biz.search import Search
from tidings.service.chat.biz.sending import Sender, SendPolicy
from tidings.service.chat.data.account import GrpcUserDirectory
from tidings.service.chat.data.caches import chat_caches
from tidings.service.chat.data.conversations import CachedConversationRepo, SQLConversationRepo
from tidings.service.chat.data.dedup import SQLDedupStore
from tidings.service.chat.data.history import NoHistoryCache
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.publisher import BusEventPublisher
from tidings.service.chat.data.seq import MemorySeqAllocator, RedisSeqAllocator, SQLSeqLease
from tidings.service.chat.service.servicer import ChatServicer
from tidings.service.chat.store.history import RedisHistoryCache

SERVICE_NAME = chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name


async def build(
    infra: Infra,
    *,
    registry: CollectorRegistry = REGISTRY,
    topics: events.Topics | None = None,
    redis_prefix: str = "chat",
) -> ChatServicer:
    """The servicer on real adapters; ``topics`` and ``redis_prefix`` let a test run in its own namespace."""
    topics = topics or events.Topics(infra.settings.bus.namespace)
    engine = await infra.engine()
    statements = await infra.statements_engine()
    # History, conversation lists and member lists read the replica, if any; what guards a write or must see
    # the reader's own writes reads the primary (docs/DATA.md).
    replica = await infra.replica()
    ids = await infra.idgen()
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs(chat_topics.ALL))
    metrics = ChatMetrics(registry)
    clock = SystemClock()
    messages = SQLMessageRepo(engine, statements=statements, replica=replica)
    lease = SQLSeqLease(engine)
    kit = await infra.cache_kit(registry, "chat", topics=topics)
    directory = GrpcUserDirectory(infra.channel("account"))
    caches = chat_caches(kit, prefix=redis_prefix)

    async def shared(client: redis.Redis) -> tuple[SeqAllocator, HistoryCache, ConversationRepo]:
        # Shares the caches' breaker: once Redis fails, seqs come from the database and reads skip the cache.
        seqs = RedisSeqAllocator(
            client, lease, metrics, prefix=redis_prefix, breaker=kit.breaker, timeout_s=infra.settings.cache.timeout_s
        )
        # Conversation states come from the cache, whose heads the persist job invalidates.
        conversations = CachedConversationRepo(engine, caches, statements=statements, replica=replica)
        return seqs, RedisHistoryCache(client, prefix=redis_prefix), conversations

    # Embedded: this process's seq blocks, no recent window, and states read fresh (an in-process cache is this
    # process's own, which the persist job cannot reach to invalidate).
    embedded: tuple[SeqAllocator, HistoryCache, ConversationRepo] = (
        MemorySeqAllocator(lease, metrics),
        NoHistoryCache(),
        SQLConversationRepo(engine, statements=statements, replica=replica),
    )
    seqs, history_cache, conversations = await infra.on_redis(shared, embedded)
    access = Access(conversations, directory, gates=caches.gates, blocks=caches.blocks)
    publisher = BusEventPublisher(bus, topics)
    dedup = SQLDedupStore(engine, statements=statements)
    sender = Sender(access, seqs, dedup, publisher, ids, clock, SendPolicy(), log.get("chat.send"))
    return ChatServicer(
        Conversations(
            conversations, messages, directory, access, ids, clock, log.get("chat.conversations"), caches.members
        ),
        Messages(access, conversations, messages, sender, publisher, history_cache, clock, log.get("chat.messages")),
        Search(access, conversations, await infra.search()),
    )


def checks(infra: Infra) -> list[Check]:
    # Not Redis: sends and reads go on without it (seqs from the database, reads past the cache; docs/CACHE.md),
    # so an instance that cannot reach it must keep taking traffic.
    return [infra.database_check()]


async def wire(infra: Infra, *, registry: CollectorRegistry = REGISTRY) -> Module:
    servicer = await build(infra, registry=registry)
    return module.grpc_service(
        "chat",
        infra.settings.modules.chat,
        checks(infra),
        registrars=[lambda server: chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, server)],
        service_names=[SERVICE_NAME],
    )
