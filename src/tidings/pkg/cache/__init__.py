"""Typed cache-aside with singleflight, null sentinel, TTL jitter, versioned bytes and delayed double delete.

See docs/CACHE.md for what is cached, for how long, and the staleness a reader can see.
"""

from tidings.pkg.cache.aside import Cache, Cached, CachePolicy
from tidings.pkg.cache.codec import Codec, Corrupt, JsonCodec, dataclass_codec
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE, BusInvalidator, Invalidator, LocalInvalidator
from tidings.pkg.cache.memory import MemoryStore
from tidings.pkg.cache.metrics import CacheMetrics
from tidings.pkg.cache.ports import CacheStore, ReadThrough
from tidings.pkg.cache.redis_store import RedisStore

__all__ = [
    "CACHE_INVALIDATE",
    "BusInvalidator",
    "Cache",
    "CacheMetrics",
    "CachePolicy",
    "CacheStore",
    "Cached",
    "Codec",
    "Corrupt",
    "Invalidator",
    "JsonCodec",
    "LocalInvalidator",
    "MemoryStore",
    "ReadThrough",
    "RedisStore",
    "dataclass_codec",
]
