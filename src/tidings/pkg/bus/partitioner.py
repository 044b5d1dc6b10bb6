"""Key -> partition, exactly as Kafka's Java client (and aiokafka's default partitioner) computes it.

The embedded log calls aiokafka's own ``DefaultPartitioner`` instead of a copy of murmur2, so both adapters put a
given key on the same partition by construction, not by a second implementation that could drift.
"""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key`` in a topic of ``partitions`` partitions: murmur2, positive, modulo the count."""
    every = list(range(partitions))
    partition: int = DefaultPartitioner()(key, every, every)
    return partition
