"""The invalidate job on the real Redis: it deletes a write's keys once their moment has come, not before."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from tidings.api.common.v1 import events_pb2
from tidings.job.biz.invalidate import DelayedDelete
from tidings.job.data.keys import RedisKeys
from tidings.job.data.telemetry import InvalidateTelemetry
from tidings.job.service.invalidate import InvalidateHandler
from tidings.pkg.bus import Record, events
from tidings.pkg.cache import CACHE_INVALIDATE, RedisStore
from tidings.pkg.pbtime import timestamp


def _record(payload: events_pb2.CacheInvalidate) -> Record:
    event = events.encode(events.Topics(), CACHE_INVALIDATE, b"1", payload)
    return Record(event.topic, 0, 0, event.key, event.value, event.headers, 0)


async def test_the_invalidate_job_deletes_after_not_before(redis_client: redis.Redis, redis_prefix: str) -> None:
    store = RedisStore(redis_client)
    now = 1_800_000_000_000
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    job = InvalidateHandler(DelayedDelete(RedisKeys(store), InvalidateTelemetry(), wall_ms=lambda: now, sleep=sleep))
    keys = [f"{redis_prefix}:a", f"{redis_prefix}:b"]
    await store.set_many([(key, b"stale", 60) for key in keys])
    await job.handle([_record(events_pb2.CacheInvalidate(keys=keys, not_before=timestamp(now + 800), origin="t"))])
    assert slept == [pytest.approx(0.8)]
    assert await store.get_many(keys) == [None, None]
