"""Composition root of the job module: one consumer group per concern (persist and push now; index later)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from tidings.bootstrap import Infra
from tidings.job import persist, push
from tidings.job.invalidate import invalidate_consumer
from tidings.job.persist import PersistJob
from tidings.job.push import CachedMembership, PushJob, PushMetrics, PushOptions
from tidings.pkg import module
from tidings.pkg.app import Module, Server
from tidings.pkg.bus import events
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.health import Check
from tidings.realtime.delivery import DeliveryClient
from tidings.realtime.model import RouteTable
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.data.caches import chat_caches
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.data.metrics import PersistMetrics
from tidings.service.chat.data.recent import RedisHistoryCache


async def persist_consumer(
    infra: Infra,
    consumer_metrics: ConsumerMetrics,
    persist_metrics: PersistMetrics,
    *,
    topics: events.Topics | None = None,
    redis_prefix: str = "chat",
    options: ConsumerOptions | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> OrderedConsumer:
    """The ``persist`` group on ``chat.message.sent``; ``topics``/``redis_prefix`` let a test use its own names."""
    topics = topics or events.Topics(infra.settings.bus.namespace)
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs(chat_topics.ALL))
    cache = RedisHistoryCache(infra.redis(), prefix=redis_prefix) if infra.uses_redis else None
    # Chat reads heads cache-aside from Redis only (an in-process store is chat's own: nothing to invalidate here).
    heads = (
        chat_caches(await infra.cache_kit(registry, "job", topics=topics), prefix=redis_prefix).heads
        if infra.uses_redis
        else None
    )
    job = PersistJob(SQLMessageRepo(await infra.engine()), cache, persist_metrics, heads=heads)
    return OrderedConsumer(
        bus,
        group=f"{topics.prefix}{persist.GROUP}",
        topics=[topics.name(chat_topics.MESSAGE_SENT)],
        handler=job.handle,
        metrics=consumer_metrics,
        # Two workers, fetches and batches that wait a little for more: a batch costs one transaction (three round
        # trips) however many it holds, and a message is still persisted well within the second clients may wait.
        options=options
        or ConsumerOptions(
            workers=2, batch_size=1000, batch_linger_s=0.05, fetch_wait_s=0.02, transient=persist.TRANSIENT
        ),
    )


class PushWorker:
    """The ``push`` consumer and the Deliver channels it owns: stopping it drains the consumer, then closes them."""

    def __init__(self, consumer: OrderedConsumer, client: DeliveryClient) -> None:
        self.consumer = consumer
        self._client = client

    @property
    def name(self) -> str:
        return self.consumer.name

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self._client.close()


async def push_worker(
    infra: Infra,
    consumer_metrics: ConsumerMetrics,
    push_metrics: PushMetrics,
    *,
    topics: events.Topics | None = None,
    routes: RouteTable | None = None,
    options: ConsumerOptions | None = None,
    push_options: PushOptions | None = None,
) -> PushWorker:
    """The ``push`` group on chat's three topics; ``topics``/``routes`` let a test use its own names."""
    topics = topics or events.Topics(infra.settings.bus.namespace)
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs(chat_topics.ALL))
    client = DeliveryClient(
        timeout_s=infra.settings.realtime.io_timeout_s, secret=infra.settings.auth.require_internal_secret()
    )
    job = PushJob(
        CachedMembership(SQLConversationRepo(await infra.engine(), statements=await infra.statements_engine())),
        routes or infra.route_table(),
        client,
        push_metrics,
        topics=topics,
        options=push_options,
    )
    consumer = OrderedConsumer(
        bus,
        group=f"{topics.prefix}{push.GROUP}",
        topics=job.topic_names,
        handler=job.handle,
        metrics=consumer_metrics,
        # Latency first: batches gathered briefly, as many as came meanwhile; enough workers that one slow bff stalls
        # few conversations, few enough that a busy topic makes batches of many (one route lookup, one Deliver each).
        options=options or ConsumerOptions(workers=8, batch_size=200, batch_linger_s=0.002, transient=push.TRANSIENT),
    )
    return PushWorker(consumer, client)


async def wire(infra: Infra, *, registry: CollectorRegistry = REGISTRY) -> Module:
    consumer_metrics = ConsumerMetrics(registry)
    persister = await persist_consumer(infra, consumer_metrics, PersistMetrics(registry), registry=registry)
    pusher = await push_worker(infra, consumer_metrics, PushMetrics(registry))
    checks = [
        infra.database_check(),
        Check(persister.name, persister.probe),
        Check(pusher.name, pusher.consumer.probe),
    ]
    workers: list[Server] = [persister, pusher]
    if infra.uses_redis:
        # The second, delayed delete of cache keys; the in-process cache of ``tidings dev`` does it on a timer.
        invalidator = await invalidate_consumer(infra, consumer_metrics)
        workers.append(invalidator)
        checks += [infra.redis_check(), Check(invalidator.name, invalidator.probe)]
    return module.worker("job", infra.settings.modules.job, checks, workers=workers)
