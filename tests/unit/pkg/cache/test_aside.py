"""The cache-aside helper on the in-process store: singleflight, sentinel, jitter, versioned bytes, faults."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
from prometheus_client import CollectorRegistry

from tidings.pkg.cache import Cache, CacheMetrics, CachePolicy, JsonCodec, LocalInvalidator, MemoryStore
from tidings.pkg.cache.codec import Corrupt, decode, encode

CODEC: JsonCodec[str] = JsonCodec(3, lambda value: value, str)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(store: MemoryStore | None = None, *, clock: Clock | None = None, **policy: float) -> Cache[int, str]:
    return Cache(
        "unit",
        store if store is not None else MemoryStore(),
        CODEC,
        CacheMetrics(CollectorRegistry(), "unit"),
        key=lambda key: f"u:{key}",
        policy=CachePolicy(**policy),
        clock=clock or Clock(),
    )


class FailingStore:
    def __init__(self) -> None:
        self.calls = 0

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls += 1
        raise ConnectionError("redis is down")

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        self.calls += 1
        raise ConnectionError("redis is down")

    async def delete_many(self, keys: Sequence[str]) -> None:
        self.calls += 1
        raise ConnectionError("redis is down")


def test_versioned_bytes_round_trip_and_refuse_other_versions() -> None:
    assert decode(CODEC, encode(CODEC, "hello")) == "hello"
    assert decode(CODEC, encode(CODEC, None)) is None
    other: JsonCodec[str] = JsonCodec(4, lambda value: value, str)
    with pytest.raises(Corrupt):
        decode(other, encode(CODEC, "hello"))
    for garbage in (b"", b"tc", b'xx\x00\x03\x01"a"', b"tc\x00\x03\x07", b"tc\x00\x03\x01{"):
        with pytest.raises(Corrupt):
            decode(CODEC, garbage)


def test_ttl_jitter_stays_within_bounds() -> None:
    cache = make(ttl_s=100, null_ttl_s=10, jitter=0.2)
    samples = [cache.ttl_s() for _ in range(2000)]
    assert min(samples) >= 80
    assert max(samples) <= 120
    assert max(samples) - min(samples) > 20  # actually spread
    nulls = [cache.ttl_s(null=True) for _ in range(500)]
    assert min(nulls) >= 8
    assert max(nulls) <= 12


async def test_values_are_stored_with_jittered_ttl() -> None:
    store = MemoryStore()
    cache = make(store, ttl_s=100, null_ttl_s=10, jitter=0.2)

    async def load(key: int) -> str | None:
        return None if key == 0 else "v"

    await cache.get(1, load)
    await cache.get(0, load)
    value_ttl, null_ttl = store.ttl("u:1"), store.ttl("u:0")
    assert value_ttl is not None
    assert 80 <= value_ttl <= 120
    assert null_ttl is not None
    assert 8 <= null_ttl <= 12


async def test_singleflight_one_load_for_concurrent_misses() -> None:
    cache = make()
    loads = 0
    release = asyncio.Event()

    async def load(key: int) -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return f"v{key}"

    waiters = [asyncio.create_task(cache.get(1, load)) for _ in range(500)]
    waiters += [asyncio.create_task(cache.get_many([1, 2], _many(load))) for _ in range(10)]
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(*waiters)
    assert results[:500] == ["v1"] * 500
    assert results[500:] == [{1: "v1", 2: "v2"}] * 10
    assert loads == 2  # key 1 once (shared with get_many), key 2 once


def _many(load):  # type: ignore[no-untyped-def]
    async def load_many(keys: list[int]) -> Mapping[int, str]:
        return {key: await load(key) for key in keys}

    return load_many


async def test_null_sentinel_remembers_missing_rows() -> None:
    cache = make()
    loads = 0

    async def load(key: int) -> str | None:
        nonlocal loads
        loads += 1
        return None

    assert await cache.get(1, load) is None
    assert await cache.get(1, load) is None
    assert loads == 1


async def test_get_many_batches_the_misses_into_one_loader_call() -> None:
    cache = make()
    calls: list[list[int]] = []

    async def load_many(keys: list[int]) -> Mapping[int, str]:
        calls.append(list(keys))
        return {key: str(key) for key in keys}

    await cache.get_many(range(0, 50, 2), load_many)
    found = await cache.get_many(range(50), load_many)
    assert found == {key: str(key) for key in range(50)}
    assert calls == [list(range(0, 50, 2)), list(range(1, 50, 2))]


async def test_a_failing_loader_reaches_every_waiter_and_caches_nothing() -> None:
    cache = make()
    attempts = 0

    async def load(key: int) -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise RuntimeError("database down")
        return "ok"

    results = await asyncio.gather(*(cache.get(1, load) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await cache.get(1, load) == "ok"
    assert attempts == 2


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    cache = make()
    release = asyncio.Event()

    async def load(key: int) -> str:
        await release.wait()
        return "v"

    first = asyncio.create_task(cache.get(1, load))
    second = asyncio.create_task(cache.get(1, load))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "v"


class SlowStore(MemoryStore):
    """Reads wait until ``opened`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        await self.opened.wait()
        return await super().get_many(keys)


async def test_a_caller_cancelled_while_reading_the_store_leaves_the_fetch_to_the_others() -> None:
    store = SlowStore()
    cache = make(store)
    loads = 0

    async def load(key: int) -> str:
        nonlocal loads
        loads += 1
        return "v"

    first = asyncio.create_task(cache.get(1, load))
    await asyncio.sleep(0)  # the first caller reads the store (in its own task)
    second = asyncio.create_task(cache.get(1, load))
    await asyncio.sleep(0)  # the second joins its fetch
    first.cancel()
    store.opened.set()
    async with asyncio.timeout(5):  # a bound on a hang, not a measurement
        assert await second == "v"
    assert loads == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failing_store_falls_through_to_the_loader_and_is_skipped_for_a_while() -> None:
    store = FailingStore()
    clock = Clock()
    cache = Cache("unit", store, CODEC, CacheMetrics(CollectorRegistry(), "unit"), key=str, clock=clock)

    async def load(key: int) -> str:
        return "db"

    assert await cache.get(1, load) == "db"
    assert store.calls == 1  # the read failed; the fill was skipped (paused)
    assert await cache.get(2, load) == "db"
    assert store.calls == 1
    await cache.invalidate([1])  # deletes are always tried, and their failure is not the caller's
    assert store.calls == 2
    clock.now += 5
    assert await cache.get_many([3, 4], _many(load)) == {3: "db", 4: "db"}
    assert store.calls == 3


async def test_invalidation_during_a_load_keeps_the_old_value_out() -> None:
    store = MemoryStore()
    cache = make(store)
    release = asyncio.Event()
    value = "old"

    async def load(key: int) -> str:
        seen = value
        await release.wait()
        return seen

    reader = asyncio.create_task(cache.get(1, load))
    await asyncio.sleep(0.01)
    value = "new"
    await cache.invalidate([1])
    release.set()
    assert await reader == "old"  # it started before the write: old is a correct answer for it
    assert await store.get_many(["u:1"]) == [None]
    assert await cache.get(1, load) == "new"


async def test_a_slow_load_is_returned_but_not_stored() -> None:
    store = MemoryStore()
    clock = Clock()
    cache = make(store, clock=clock, fill_deadline_s=0.5)

    async def load(key: int) -> str:
        clock.now += 1.0
        return "v"

    assert await cache.get(1, load) == "v"
    assert await store.get_many(["u:1"]) == [None]


async def test_local_invalidator_deletes_again_after_the_delay() -> None:
    store = MemoryStore()
    invalidator = LocalInvalidator(store, delay_s=0.05)
    cache = Cache(
        "unit", store, CODEC, CacheMetrics(CollectorRegistry(), "unit"), key=lambda k: f"u:{k}", invalidator=invalidator
    )
    await cache.invalidate([1])
    await store.set_many([("u:1", encode(CODEC, "stale"), 60)])  # a racing reader stored an old value
    await invalidator.drain()
    assert await store.get_many(["u:1"]) == [None]
