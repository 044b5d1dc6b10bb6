"""Prometheus metrics of the chat service and the persist job; created per registry, labels bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class ChatMetrics:
    """One set per registry (the process's, or a test's own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.seq_leases = Counter(
            "tidings_chat_seq_block_leases",
            "Seq blocks leased from the durable counter, by allocator (redis, memory; database: leased per send "
            "while Redis is unreachable).",
            ["allocator"],
            registry=registry,
        )


class PersistMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "tidings_persist_messages",
            "Messages the persist job wrote (a redelivered one again, harmlessly).",
            registry=registry,
        )
        self.cache_failures = Counter(
            "tidings_persist_cache_update_failures",
            "Batches whose Redis update (max seq, recent window) failed after the database commit.",
            registry=registry,
        )
