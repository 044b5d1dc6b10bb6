"""How key lists are split for a Redis Cluster, and left whole for one Redis (no server needed: nothing is sent)."""

from __future__ import annotations

import redis.asyncio as redis
from redis.crc import key_slot

from tidings.pkg.rediscluster import cluster_client, is_cluster, slot_groups


def test_one_redis_takes_any_keys_in_one_call() -> None:
    client = redis.Redis()
    assert not is_cluster(client)
    assert slot_groups(client, ["a", "b", "c"]) == [[0, 1, 2]]
    assert slot_groups(client, []) == []


def test_a_cluster_gets_one_group_per_slot_in_first_seen_order() -> None:
    client = cluster_client("redis://127.0.0.1:7001")
    assert is_cluster(client)
    keys = ["chat:{7}:seq", "rl:a", "chat:{7}:recent", "rl:b", "rl:a"]
    groups = slot_groups(client, keys)
    assert sorted(index for group in groups for index in group) == list(range(len(keys)))
    for group in groups:
        assert len({key_slot(keys[index].encode()) for index in group}) == 1
    assert [0, 2] in groups  # a hash tag keeps a conversation's keys together
    assert groups[0][0] == 0
    assert all(group == sorted(group) for group in groups)
    assert len(groups) == len({key_slot(key.encode()) for key in keys})
