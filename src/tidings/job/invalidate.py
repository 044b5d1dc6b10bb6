"""The invalidate job: consumer group ``invalidate`` on ``cache.invalidate`` deletes cache keys a second time.

A write commits, deletes its keys, and publishes ``cache.invalidate`` with ``not_before`` = commit time plus the
replica-lag window. This job waits until then and deletes the keys again, so a value read from a lagging replica
(or loaded just before the commit) and stored after the first delete cannot stay. Redis being down is transient:
the batch is retried until it is back, so a key that the writer could not delete is deleted once Redis returns.
Records of one key (entity) arrive in order and ``not_before`` grows with them, so waiting for a batch's latest
``not_before`` delays nothing by more than the window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from tidings.bootstrap import Infra
from tidings.pkg import log
from tidings.pkg.bus import Record, events
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE
from tidings.pkg.cache.ports import CacheStore
from tidings.pkg.cache.redis_store import RedisStore
from tidings.pkg.pbtime import millis

GROUP = "invalidate"

TRANSIENT: tuple[type[Exception], ...] = (RedisError, ConnectionError, TimeoutError, OSError)

# A not_before further ahead than this is a clock problem of the writer: delete now rather than hold the queue.
MAX_WAIT_S = 60.0


class InvalidateJob:
    def __init__(
        self,
        store: CacheStore,
        *,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._wall_ms = wall_ms
        self._sleep = sleep
        self._log = log.get("job.invalidate")

    async def handle(self, records: list[Record]) -> None:
        payloads = [events.decode(CACHE_INVALIDATE, record) for record in records]
        keys = list(dict.fromkeys(key for payload in payloads for key in payload.keys))
        if not keys:
            return
        wait_s = (max(millis(payload.not_before) for payload in payloads) - self._wall_ms()) / 1000
        if wait_s > MAX_WAIT_S:
            self._log.warning("cache.invalidate far in the future; deleting now", wait_s=wait_s)
        elif wait_s > 0:
            await self._sleep(wait_s)
        await self._store.delete_many(keys)


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
    job = InvalidateJob(RedisStore(infra.redis(), batch_size=conf.batch_size, timeout_s=conf.timeout_s))
    return OrderedConsumer(
        bus,
        group=f"{topics.prefix}{GROUP}",
        topics=[topics.name(CACHE_INVALIDATE)],
        handler=job.handle,
        metrics=consumer_metrics,
        # Waiting for not_before holds a worker; many workers keep entities' waits from queuing behind each other.
        # The deletes are late by design: fetches may wait for more of them.
        options=options or ConsumerOptions(workers=16, batch_size=500, fetch_wait_s=0.05, transient=TRANSIENT),
    )
