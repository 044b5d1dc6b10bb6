"""Composition root of the job module: one consumer group per concern (persist, push, index, and with Redis
invalidate), those of ``modules.job.groups`` in this process.

``persist_consumer``, ``push_worker``, ``index_consumer`` and ``invalidate_consumer`` take
``topics``/``redis_prefix``/``options`` so a test can run a group in its own namespace.
"""

from __future__ import annotations

import redis.asyncio as redis
from prometheus_client import REGISTRY, CollectorRegistry

from tidings.bootstrap import Infra
from tidings.job import server
from tidings.job.biz.index import Indexer
from tidings.job.biz.invalidate import DelayedDelete
from tidings.job.biz.persist import Heads, HistoryWindow, Persister, PersistProbe
from tidings.job.biz.push import Pusher, PushOptions, PushProbe
from tidings.job.data.delivery import GrpcDeliverer
from tidings.job.data.heads import CachedHeads, NoHeads
from tidings.job.data.history import NoHistoryWindow, RedisHistoryWindow
from tidings.job.data.keys import RedisKeys
from tidings.job.data.membership import CachedMembership, SQLConversationSource
from tidings.job.data.messages import SQLMessageStore
from tidings.job.data.routes import RouteTableLookup
from tidings.job.data.senders import SQLSenderNames
from tidings.job.data.telemetry import InvalidateTelemetry, PersistTelemetry, PushTelemetry
from tidings.job.service import index, invalidate, persist, push
from tidings.job.service.index import IndexHandler
from tidings.job.service.invalidate import InvalidateHandler
from tidings.job.service.persist import PersistHandler
from tidings.job.service.push import PushHandler
from tidings.pkg import module
from tidings.pkg.app import Module, Server
from tidings.pkg.bus import events
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE
from tidings.pkg.cache.redis_store import RedisStore
from tidings.pkg.health import Check
from tidings.realtime.delivery import DeliveryClient
from tidings.service.account import topics as account_topics
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.store.heads import heads_cache
from tidings.service.chat.store.history import RedisHistoryCache


async def persist_consumer(
    infra: Infra,
    consumer_metrics: ConsumerMetrics,
    probe: PersistProbe,
    *,
    topics: events.Topics | None = None,
    redis_prefix: str = "chat",
    options: ConsumerOptions | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> OrderedConsumer:
    """The ``persist`` group on ``chat.message.sent``."""
    topics = topics or events.Topics(infra.settings.bus.namespace)
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs(chat_topics.ALL))

    async def window(client: redis.Redis) -> HistoryWindow:
        return RedisHistoryWindow(RedisHistoryCache(client, prefix=redis_prefix))

    async def heads(_: redis.Redis) -> Heads:
        return CachedHeads(heads_cache(await infra.cache_kit(registry, "job", topics=topics), prefix=redis_prefix))

    persister = Persister(
        SQLMessageStore(await infra.engine()),
        await infra.on_redis(window, NoHistoryWindow()),
        await infra.on_redis(heads, NoHeads()),
        probe,
    )
    handler = PersistHandler(persister)
    return server.consumer(
        bus,
        topics,
        persist.GROUP,
        [topics.name(persist.TOPIC)],
        handler.handle,
        consumer_metrics,
        options or server.PERSIST_OPTIONS,
    )


async def push_worker(
    infra: Infra,
    consumer_metrics: ConsumerMetrics,
    probe: PushProbe,
    *,
    topics: events.Topics | None = None,
    options: ConsumerOptions | None = None,
    push_options: PushOptions | None = None,
) -> server.ClosingConsumer:
    """The ``push`` group on chat's three topics and account's token revocations; it owns the Deliver channels to
    the bff instances."""
    topics = topics or events.Topics(infra.settings.bus.namespace)
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs([*chat_topics.ALL, *account_topics.ALL]))
    conf = infra.settings
    deliverer = GrpcDeliverer(
        DeliveryClient(timeout_s=conf.realtime.io_timeout_s, secret=conf.auth.require_internal_secret())
    )
    conversations = SQLConversationSource(await infra.engine(), statements=await infra.statements_engine())
    pusher = Pusher(
        CachedMembership(conversations, ttl_s=conf.realtime.push_members_cache_s),
        RouteTableLookup(infra.route_table()),
        deliverer,
        probe,
        options=push_options,
    )
    handler = PushHandler(pusher, topics=topics)
    consumer = server.consumer(
        bus, topics, push.GROUP, handler.topic_names, handler.handle, consumer_metrics, options or server.PUSH_OPTIONS
    )
    return server.ClosingConsumer(consumer, deliverer.close)


async def index_consumer(
    infra: Infra,
    consumer_metrics: ConsumerMetrics,
    *,
    topics: events.Topics | None = None,
    options: ConsumerOptions | None = None,
) -> OrderedConsumer:
    """The ``index`` group on sent and recalled messages and user updates, writing the search index."""
    topics = topics or events.Topics(infra.settings.bus.namespace)
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs([*chat_topics.ALL, *account_topics.ALL]))
    senders = SQLSenderNames(await infra.engine(), statements=await infra.statements_engine())
    handler = IndexHandler(Indexer(await infra.search(), senders), topics=topics)
    return server.consumer(
        bus, topics, index.GROUP, handler.topic_names, handler.handle, consumer_metrics, options or server.INDEX_OPTIONS
    )


async def invalidate_consumer(
    infra: Infra,
    consumer_metrics: ConsumerMetrics,
    *,
    topics: events.Topics | None = None,
    options: ConsumerOptions | None = None,
) -> OrderedConsumer:
    """The ``invalidate`` group on ``cache.invalidate`` (Redis only: the in-process cache deletes on a timer)."""
    topics = topics or events.Topics(infra.settings.bus.namespace)
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs([CACHE_INVALIDATE]))
    conf = infra.settings.cache
    keys = RedisKeys(RedisStore(infra.redis(), batch_size=conf.batch_size, timeout_s=conf.timeout_s))
    handler = InvalidateHandler(DelayedDelete(keys, InvalidateTelemetry()))
    return server.consumer(
        bus,
        topics,
        invalidate.GROUP,
        [topics.name(invalidate.TOPIC)],
        handler.handle,
        consumer_metrics,
        options or server.INVALIDATE_OPTIONS,
    )


async def wire(infra: Infra, *, registry: CollectorRegistry = REGISTRY) -> Module:
    """The consumer groups of ``modules.job.groups``, each with its readiness check."""
    consumer_metrics = ConsumerMetrics(registry)
    groups = infra.settings.modules.job.groups
    workers: list[Server] = []
    checks = [infra.database_check()]

    def run(worker: OrderedConsumer | server.ClosingConsumer) -> None:
        workers.append(worker)
        checks.append(Check(worker.name, worker.probe))

    if "persist" in groups:
        persister = await persist_consumer(infra, consumer_metrics, PersistTelemetry(registry), registry=registry)
        run(persister)
    if "push" in groups:
        pusher = await push_worker(infra, consumer_metrics, PushTelemetry(registry))
        run(pusher)
    if "index" in groups:
        indexer = await index_consumer(infra, consumer_metrics)
        run(indexer)
    if "invalidate" in groups:

        async def invalidation(_: redis.Redis) -> tuple[list[Server], list[Check]]:
            # The second, delayed delete of cache keys; the in-process cache of ``tidings dev`` does it on a timer.
            invalidator = await invalidate_consumer(infra, consumer_metrics)
            return [invalidator], [infra.redis_check(), Check(invalidator.name, invalidator.probe)]

        nothing: tuple[list[Server], list[Check]] = ([], [])
        more_workers, more_checks = await infra.on_redis(invalidation, nothing)
        workers += more_workers
        checks += more_checks
    return module.worker("job", infra.settings.modules.job, checks, workers=workers)
