"""The caches of chat's membership and read marks: their keys and value schemas, defined once for chat (which reads
them cache-aside and invalidates them on writes) and for the reconcile task (which checks them against the
database). Keys carry the conversation id as a Redis Cluster hash tag, like the conversation's other keys."""

from __future__ import annotations

from tidings.pkg.cache import Cache, JsonCodec
from tidings.pkg.cache.kit import CacheKit

MEMBERS_SCHEMA = 1
READ_SCHEMA = 1

MEMBERS_CODEC: JsonCodec[tuple[int, ...]] = JsonCodec(MEMBERS_SCHEMA, list, lambda data: tuple(int(v) for v in data))
READ_CODEC: JsonCodec[int] = JsonCodec(READ_SCHEMA, int, int)


def members_cache(kit: CacheKit, prefix: str = "chat") -> Cache[int, tuple[int, ...]]:
    """Per conversation: its current member ids, ascending."""
    return kit.cache("members", MEMBERS_CODEC, lambda conversation_id: f"{prefix}:{{{conversation_id}}}:members")


def reads_cache(kit: CacheKit, prefix: str = "chat") -> Cache[tuple[int, int], int]:
    """Per (conversation, user): a current member's read seq; the null sentinel for anyone else."""
    return kit.cache("read", READ_CODEC, lambda key: f"{prefix}:{{{key[0]}}}:read:{key[1]}")
