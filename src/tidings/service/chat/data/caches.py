"""The chat service's caches: their keys, value schemas and policies (docs/CACHE.md lists them all).

Keys carry the conversation id as a Redis Cluster hash tag, like the seq and recent-window keys, so a
conversation's keys share a slot. A schema number is stored in every value: bump it when a value's shape changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tidings.pkg.cache import Cache, JsonCodec
from tidings.pkg.cache.kit import CacheKit
from tidings.service.chat.biz.access import Gate
from tidings.service.chat.biz.model import Kind
from tidings.service.chat.store.heads import Head, heads_cache
from tidings.service.chat.store.states import members_cache, reads_cache

GATE_SCHEMA = 1
BLOCK_SCHEMA = 1

# Blocks are the account service's: chat gets no invalidation for them, so they live briefly.
BLOCK_TTL_S = 5.0

GATE_CODEC: JsonCodec[Gate] = JsonCodec(
    GATE_SCHEMA,
    lambda gate: [int(gate.kind), gate.peer_id, gate.active],
    lambda data: Gate(Kind(data[0]), None if data[1] is None else int(data[1]), bool(data[2])),
)
BLOCK_CODEC: JsonCodec[bool] = JsonCodec(BLOCK_SCHEMA, bool, bool)


@dataclass(frozen=True)
class ChatCaches:
    gates: Cache[tuple[int, int], Gate]
    members: Cache[int, tuple[int, ...]]
    blocks: Cache[tuple[int, int], bool]
    # Per conversation, invalidated by the persist job after each batch it stores (``store.heads``).
    heads: Cache[int, Head]
    # Per (conversation, user): a current member's read seq; "no such row" for anyone else.
    reads: Cache[tuple[int, int], int]


def chat_caches(kit: CacheKit, prefix: str = "chat") -> ChatCaches:
    return ChatCaches(
        gates=kit.cache("gate", GATE_CODEC, lambda key: f"{prefix}:{{{key[0]}}}:gate:{key[1]}"),
        members=members_cache(kit, prefix),
        blocks=kit.cache(
            "blocked",
            BLOCK_CODEC,
            lambda pair: f"{prefix}:blocked:{pair[0]}:{pair[1]}",
            policy=replace(kit.policy, ttl_s=BLOCK_TTL_S, null_ttl_s=BLOCK_TTL_S),
        ),
        heads=heads_cache(kit, prefix),
        reads=reads_cache(kit, prefix),
    )
