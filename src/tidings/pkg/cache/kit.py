"""``CacheKit``: what the caches of one module share (store, invalidator, metrics, policy, breaker)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from tidings.pkg.cache.aside import Cache, CachePolicy
from tidings.pkg.cache.breaker import Breaker
from tidings.pkg.cache.codec import Codec
from tidings.pkg.cache.invalidation import Invalidator
from tidings.pkg.cache.metrics import CacheMetrics
from tidings.pkg.cache.ports import CacheStore
from tidings.pkg.conf import CacheConf

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
