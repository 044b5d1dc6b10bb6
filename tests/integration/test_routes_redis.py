"""The route table contract on Redis: scripts per user key, pipelined lookups, the expiry index and its sweep."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from tests.contracts.routes import TTL_S, RouteTableContract
from tidings.pkg.clock import FakeClock
from tidings.realtime.model import Route
from tidings.realtime.routes import RedisRouteTable


class TestRedisRouteTable(RouteTableContract):
    @pytest.fixture
    def table(self, redis_client: redis.Redis, redis_prefix: str, clock: FakeClock) -> RedisRouteTable:
        return RedisRouteTable(redis_client, ttl_s=TTL_S, prefix=redis_prefix, clock=clock)


async def test_the_key_layout_is_one_hash_per_user_and_one_expiry_index(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    clock = FakeClock()
    table = RedisRouteTable(redis_client, ttl_s=TTL_S, prefix=redis_prefix, clock=clock)
    await table.touch([Route(42, "s1", "10.0.0.7:9080")])
    expires = clock.now_ms() + TTL_S * 1000
    assert await redis_client.hgetall(f"{redis_prefix}:user:42") == {b"s1": f"{expires}|10.0.0.7:9080".encode()}
    # The key outlives its routes (two TTLs), so the sweep finds a route that expired.
    assert TTL_S * 1000 < await redis_client.pttl(f"{redis_prefix}:user:42") <= 2 * TTL_S * 1000
    assert await redis_client.zrange(f"{redis_prefix}:expiry", 0, -1, withscores=True) == [(b"42|s1", float(expires))]
    await table.remove([Route(42, "s1", "")])
    assert await redis_client.exists(f"{redis_prefix}:user:42", f"{redis_prefix}:expiry") == 0


async def test_a_flushed_table_is_told_by_the_missing_beacon(redis_client: redis.Redis, redis_prefix: str) -> None:
    table = RedisRouteTable(redis_client, ttl_s=TTL_S, prefix=redis_prefix)
    await table.beacon("10.0.0.7:9180")
    assert await table.beacon("10.0.0.7:9180")
    # What FLUSHALL, or a Redis back without its data, does to this table's keys.
    await redis_client.delete(*await redis_client.keys(f"{redis_prefix}:*"))
    assert not await table.beacon("10.0.0.7:9180")


async def test_two_tables_racing_the_sweep_claim_each_expired_route_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    clock = FakeClock()
    tables = [RedisRouteTable(redis_client, ttl_s=TTL_S, prefix=redis_prefix, clock=clock) for _ in range(2)]
    await tables[0].touch([Route(user, "s", "dead:1") for user in range(1, 51)])
    clock.advance(s=TTL_S + 1)
    first, second = await asyncio.gather(tables[0].sweep(limit=50), tables[1].sweep(limit=50))
    assert sorted(first + second) == list(range(1, 51))


async def test_a_route_that_expired_in_real_time_is_still_there_for_the_sweep(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """On the wall clock, as Redis expires keys: a crashed instance's users are reported offline by the sweep,
    rather than vanishing with their key before it runs."""
    table = RedisRouteTable(redis_client, ttl_s=2, prefix=redis_prefix)
    await table.touch([Route(42, "s1", "dead:1")])
    await asyncio.sleep(2.2)  # past the route's expiry; the key lives two TTLs
    assert await table.routes_for([42]) == {}
    assert await table.sweep() == [42]


async def test_a_sweep_cut_off_after_claiming_leaves_its_routes_to_the_next_one(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    table = RedisRouteTable(redis_client, ttl_s=TTL_S, prefix=redis_prefix, clock=clock)
    await table.touch([Route(42, "s1", "dead:1")])
    clock.advance(s=TTL_S + 1)

    async def cut_off(*_: object, **__: object) -> None:
        raise ConnectionError("Redis went away mid-sweep")

    # The sweep claims the expired route, then loses Redis before it removes it.
    with monkeypatch.context() as patched:
        patched.setattr(table._sweep, "run", cut_off)
        with pytest.raises(ConnectionError):
            await table.sweep()
    assert await table.sweep() == []  # still claimed: no one else takes it meanwhile
    clock.advance(s=TTL_S + 1)  # the claim lapses
    assert await table.sweep() == [42]
    assert await table.sweep() == []
