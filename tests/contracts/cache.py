"""The contract every ``CacheStore`` keeps, and the cache-aside behaviour on top of it, run on each store:
the in-process one (unit) and Redis (integration). A subclass provides ``store`` and a unique key ``prefix``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from prometheus_client import CollectorRegistry

from tidings.pkg.cache import Cache, CacheMetrics, CachePolicy, CacheStore, JsonCodec


def codec(version: int = 1) -> JsonCodec[dict[str, int]]:
    return JsonCodec(version, lambda value: value, lambda data: {str(k): int(v) for k, v in data.items()})


class CacheStoreContract:
    @pytest.fixture
    def prefix(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> CacheStore:
        raise NotImplementedError

    def cache(self, store: CacheStore, prefix: str, **policy: float) -> Cache[int, dict[str, int]]:
        return Cache(
            "contract",
            store,
            codec(),
            CacheMetrics(CollectorRegistry(), "contract"),
            key=lambda key: f"{prefix}:{key}",
            policy=CachePolicy(**policy),
        )

    async def test_set_get_delete_many(self, store: CacheStore, prefix: str) -> None:
        keys = [f"{prefix}:{n}" for n in range(5)]
        assert await store.get_many(keys) == [None] * 5
        await store.set_many([(key, f"v{n}".encode(), 60) for n, key in enumerate(keys[:3])])
        assert await store.get_many(keys) == [b"v0", b"v1", b"v2", None, None]
        await store.delete_many(keys[:2])
        assert await store.get_many(keys) == [None, None, b"v2", None, None]

    async def test_many_keys_beyond_one_batch_keep_their_order(self, store: CacheStore, prefix: str) -> None:
        keys = [f"{prefix}:big:{n}" for n in range(1234)]
        await store.set_many([(key, str(n).encode(), 60) for n, key in enumerate(keys)])
        assert await store.get_many(keys) == [str(n).encode() for n in range(1234)]
        await store.delete_many(keys)
        assert await store.get_many(keys) == [None] * 1234

    async def test_values_expire_each_by_its_own_time_to_live(self, store: CacheStore, prefix: str) -> None:
        await store.set_many([(f"{prefix}:short", b"x", 0.05), (f"{prefix}:long", b"y", 60)])
        await asyncio.sleep(0.2)
        assert await store.get_many([f"{prefix}:short", f"{prefix}:long"]) == [None, b"y"]

    async def test_a_thousand_concurrent_misses_load_once(self, store: CacheStore, prefix: str) -> None:
        cache = self.cache(store, prefix)
        loads = 0

        async def load(key: int) -> dict[str, int]:
            nonlocal loads
            loads += 1
            await asyncio.sleep(0.01)
            return {"id": key}

        results = await asyncio.gather(*(cache.get(7, load) for _ in range(1000)))
        assert loads == 1
        assert all(result == {"id": 7} for result in results)
        assert await cache.get(7, load) == {"id": 7}
        assert loads == 1

    async def test_get_many_loads_only_the_misses_in_one_call(self, store: CacheStore, prefix: str) -> None:
        cache = self.cache(store, prefix)
        calls: list[list[int]] = []

        async def load_many(keys: list[int]) -> Mapping[int, dict[str, int]]:
            calls.append(sorted(keys))
            return {key: {"id": key} for key in keys if key != 404}

        assert await cache.get_many([1, 2], load_many) == {1: {"id": 1}, 2: {"id": 2}}
        found = await cache.get_many([1, 2, 3, 404, 3], load_many)
        assert found == {1: {"id": 1}, 2: {"id": 2}, 3: {"id": 3}}
        assert calls == [[1, 2], [3, 404]]
        # 404 is remembered as missing (the null sentinel): no load at all now.
        assert await cache.get_many([404, 1, 2, 3], load_many) == {1: {"id": 1}, 2: {"id": 2}, 3: {"id": 3}}
        assert len(calls) == 2

    async def test_corrupt_bytes_are_a_miss_and_get_overwritten(self, store: CacheStore, prefix: str) -> None:
        cache = self.cache(store, prefix)
        loads = 0

        async def load(key: int) -> dict[str, int]:
            nonlocal loads
            loads += 1
            return {"id": key}

        for garbage in (b"", b"\x00\x01garbage", b"tc\x00\x01\x01{not json", b"plain text"):
            await store.set_many([(cache.key(5), garbage, 60)])
            assert await cache.get(5, load) == {"id": 5}
            assert await cache.get(5, load) == {"id": 5}
        assert loads == 4

    async def test_another_schema_version_is_a_miss(self, store: CacheStore, prefix: str) -> None:
        old = self.cache(store, prefix)
        new = Cache(
            "contract", store, codec(2), CacheMetrics(CollectorRegistry(), "c2"), key=lambda key: f"{prefix}:{key}"
        )

        async def load_old(key: int) -> dict[str, int]:
            return {"v": 1}

        async def load_new(key: int) -> dict[str, int]:
            return {"v": 2}

        assert await old.get(9, load_old) == {"v": 1}
        assert await new.get(9, load_new) == {"v": 2}
        assert await new.get(9, load_old) == {"v": 2}

    async def test_invalidate_makes_the_next_read_load_again(self, store: CacheStore, prefix: str) -> None:
        cache = self.cache(store, prefix)
        value = {"v": 1}

        async def load(key: int) -> dict[str, int]:
            return dict(value)

        assert await cache.get(3, load) == {"v": 1}
        value = {"v": 2}
        assert await cache.get(3, load) == {"v": 1}
        await cache.invalidate([3])
        assert await cache.get(3, load) == {"v": 2}
