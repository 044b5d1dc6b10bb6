"""Redis Cluster: what the Redis adapters do differently when their client is a ``redis.asyncio.RedisCluster``.

The adapters take a client typed ``redis.asyncio.Redis``; ``cluster_client`` builds a ``RedisCluster`` behind that
type when ``cache.cluster`` is set (``tidings.bootstrap``). The cluster client answers the same commands and does
most of the work itself: each command, script call (EVALSHA, routed by its first key) and pipelined command goes to
the node of its key's slot, a pipeline is sent to each node at once, multi-key DEL and EXISTS are split per slot,
SCAN and SCRIPT LOAD reach every primary (so a script called after a NOSCRIPT is found on the node of its key).
What it cannot do is one command or script over keys of several slots: such key lists are split here
(``slot_groups``, ``mget``). Keys that one script or transaction must touch together carry a hash tag (``{...}``)
so that they share a slot; the layouts are in docs/CACHE.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as redis
from redis.crc import key_slot
from redis.exceptions import RedisClusterUnreachableError, SlotNotCoveredError

# What "the cluster is down" looks like beside ``RedisError`` (a cluster client that reaches no node, a slot that
# no master serves): redis-py raises these outside its ``RedisError`` tree.
CLUSTER_DOWN: tuple[type[Exception], ...] = (RedisClusterUnreachableError, SlotNotCoveredError)


def cluster_client(url: str, **options: Any) -> redis.Redis:
    """A cluster client of the cluster one of whose nodes is ``url`` (``redis://host:port``), typed as the
    single-server client the adapters take: it answers the same commands (the module docstring says where not)."""
    return cast(redis.Redis, redis.RedisCluster.from_url(url, **options))


def is_cluster(client: object) -> bool:
    return isinstance(client, redis.RedisCluster)


def slot_groups(client: redis.Redis, keys: Sequence[str]) -> list[list[int]]:
    """The positions of ``keys`` in groups whose keys share a cluster slot, in first-seen order; on a single Redis
    one group of all of them (any keys may go in one script call there)."""
    if not is_cluster(client):
        return [list(range(len(keys)))] if keys else []
    groups: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key_slot(key.encode()), []).append(index)
    return list(groups.values())


async def mget(client: redis.Redis, keys: Sequence[str]) -> list[Any]:
    """The values of ``keys`` in their order: one MGET on a single Redis, one per slot (pipelined, each node at
    once) on a cluster, where one MGET must not span slots."""
    if is_cluster(client):
        return list(await cast(redis.RedisCluster, client).mget_nonatomic(list(keys)))
    return list(await client.mget(list(keys)))
