from __future__ import annotations

import pytest

from tests.contracts.cache import CacheStoreContract
from tidings.pkg.cache import CacheStore, MemoryStore


class TestMemoryStore(CacheStoreContract):
    @pytest.fixture
    def prefix(self) -> str:
        return "t"

    @pytest.fixture
    def store(self) -> CacheStore:
        return MemoryStore(max_entries=10_000)


async def test_the_memory_store_is_bounded() -> None:
    store = MemoryStore(max_entries=3)
    await store.set_many([(f"k{n}", b"v", 60) for n in range(5)])
    assert len(store) == 3
    assert await store.get_many(["k0", "k1", "k4"]) == [None, None, b"v"]
