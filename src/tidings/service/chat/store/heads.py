"""The heads cache: each conversation's newest state, read cache-aside by chat's sync and invalidated by the persist
job after each batch it stores. Its key and value schema are defined here once, for both sides."""

from __future__ import annotations

from tidings.pkg.cache import Cache, JsonCodec
from tidings.pkg.cache.kit import CacheKit

HEAD_SCHEMA = 1

# A conversation's newest state: (max_seq, updated_at_ms), both moved forward by the persist job.
Head = tuple[int, int]

HEAD_CODEC: JsonCodec[Head] = JsonCodec(HEAD_SCHEMA, list, lambda data: (int(data[0]), int(data[1])))


def heads_cache(kit: CacheKit, prefix: str = "chat") -> Cache[int, Head]:
    """Keyed by the conversation id as a Redis Cluster hash tag, like the conversation's other keys."""
    return kit.cache("head", HEAD_CODEC, lambda conversation_id: f"{prefix}:{{{conversation_id}}}:head")
