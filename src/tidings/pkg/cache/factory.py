"""``cache_kit``: a module's store, invalidator and metrics, chosen by ``cache.url`` (Redis or in-process)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry

from tidings.pkg import events
from tidings.pkg.cache.aside import Cache, CachePolicy
from tidings.pkg.cache.breaker import Breaker
from tidings.pkg.cache.codec import Codec
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE, BusInvalidator, Invalidator, LocalInvalidator
from tidings.pkg.cache.memory import MemoryStore
from tidings.pkg.cache.metrics import CacheMetrics
from tidings.pkg.cache.ports import CacheStore
from tidings.pkg.cache.redis_store import RedisStore
from tidings.pkg.conf import CacheConf
from tidings.pkg.infra import Infra

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class CacheKit:
    """What every cache of one module shares, down to the breaker: once Redis fails, all of them skip it."""

    store: CacheStore
    invalidator: Invalidator
    metrics: CacheMetrics
    policy: CachePolicy
    clock: Callable[[], float] = field(default=time.monotonic)
    # None: each cache keeps its own.
    breaker: Breaker | None = None

    def cache(
        self, name: str, codec: Codec[V], key: Callable[[K], str], *, policy: CachePolicy | None = None
    ) -> Cache[K, V]:
        return Cache(
            name,
            self.store,
            codec,
            self.metrics,
            key=key,
            policy=policy or self.policy,
            invalidator=self.invalidator,
            breaker=self.breaker,
            clock=self.clock,
        )


def policy_of(conf: CacheConf) -> CachePolicy:
    return CachePolicy(
        ttl_s=conf.ttl_s,
        null_ttl_s=conf.null_ttl_s,
        jitter=conf.jitter,
        fill_deadline_s=conf.invalidate_delay_s / 2,
        retry_after_s=conf.retry_after_s,
    )


async def cache_kit(
    infra: Infra, registry: CollectorRegistry, module: str, *, topics: events.Topics | None = None
) -> CacheKit:
    """Redis and ``cache.invalidate`` on the bus for ``redis://``; an in-process store and a timer otherwise."""
    conf = infra.settings.cache
    metrics = CacheMetrics(registry, module)
    store: CacheStore
    invalidator: Invalidator
    if infra.uses_redis:
        store = RedisStore(infra.redis(), batch_size=conf.batch_size, timeout_s=conf.timeout_s)
        topics = topics or events.Topics(infra.settings.bus.namespace)
        bus = await infra.bus()
        await bus.ensure_topics(topics.specs([CACHE_INVALIDATE]))
        invalidator = BusInvalidator(bus, topics, origin=module, delay_s=conf.invalidate_delay_s)
    else:
        store = MemoryStore(conf.memory_max_entries)
        invalidator = LocalInvalidator(store, delay_s=conf.invalidate_delay_s)
    return CacheKit(store, invalidator, metrics, policy_of(conf), breaker=Breaker(conf.retry_after_s))
