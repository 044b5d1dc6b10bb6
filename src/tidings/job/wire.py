"""Composition root of the job module: one consumer group per concern (persist now; push and index later)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from tidings.job.persist import GROUP, TRANSIENT, PersistJob
from tidings.pkg import events, module
from tidings.pkg.app import Module
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.health import Check
from tidings.pkg.infra import Infra
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
) -> OrderedConsumer:
    """The ``persist`` group on ``chat.message.sent``; ``topics``/``redis_prefix`` let a test use its own names."""
    topics = topics or events.Topics()
    bus = await infra.bus()
    await bus.ensure_topics(topics.specs(events.CHAT_TOPICS))
    cache = RedisHistoryCache(infra.redis(), prefix=redis_prefix) if infra.uses_redis else None
    job = PersistJob(SQLMessageRepo(await infra.engine()), cache, persist_metrics)
    return OrderedConsumer(
        bus,
        group=f"{topics.prefix}{GROUP}",
        topics=[topics.name(events.MESSAGE_SENT)],
        handler=job.handle,
        metrics=consumer_metrics,
        options=options or ConsumerOptions(transient=TRANSIENT),
    )


async def wire(infra: Infra, *, registry: CollectorRegistry = REGISTRY) -> Module:
    persist = await persist_consumer(infra, ConsumerMetrics(registry), PersistMetrics(registry))
    checks = [infra.database_check(), Check(persist.name, persist.probe)]
    if infra.uses_redis:
        checks.append(infra.redis_check())
    return module.worker("job", infra.settings.modules.job, checks, workers=[persist])
