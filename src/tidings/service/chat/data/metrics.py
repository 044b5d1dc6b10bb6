"""Prometheus metrics of the chat service; created per registry, labels bounded."""

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
