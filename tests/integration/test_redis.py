"""Redis through redis.asyncio: a pipeline batches many commands into one round trip, scripts included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from tests.integration.conftest import REDIS_URL, unique
from tidings.pkg.scripts import Script


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    yield client
    await client.aclose()


async def test_a_pipeline_writes_and_reads_many_keys_in_one_round_trip(client: redis.Redis) -> None:
    prefix = unique("smoke")
    keys = [f"{prefix}:{{conv:1}}:{n}" for n in range(100)]
    async with client.pipeline(transaction=False) as pipe:
        for n, key in enumerate(keys):
            pipe.set(key, n, ex=60)
        assert await pipe.execute() == [True] * 100
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
        values = await pipe.execute()
    assert [int(value) for value in values] == list(range(100))
    assert await client.delete(*keys) == 100


async def test_a_transaction_pipeline_is_atomic_for_keys_of_one_hash_slot(client: redis.Redis) -> None:
    key = unique("seq") + ":{conv:7}"
    async with client.pipeline(transaction=True) as pipe:
        pipe.incrby(key, 100)
        pipe.expire(key, 60)
        pipe.get(key)
        incremented, expired, value = await pipe.execute()
    assert (incremented, expired, int(value)) == (100, True, 100)
    await client.delete(key)


async def _script_exists_calls(client: redis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_script|exists", {}).get("calls", 0))


async def test_a_pipelined_script_asks_no_script_exists_and_survives_redis_forgetting_it(client: redis.Redis) -> None:
    key = unique("script") + ":counter"
    # A source of its own (the comment), so Redis has never seen it.
    script = Script(client, f"-- {uuid.uuid4().hex}\nreturn redis.call('INCR', KEYS[1])")
    asked_before = await _script_exists_calls(client)

    def incr_and_read(pipe: Pipeline) -> None:
        script.call(pipe, [key], [])
        pipe.get(key)

    # Not loaded yet: the pipeline is refused, the script loaded, and the pipeline run again.
    assert await script.run(incr_and_read) == [1, b"1"]
    assert await script.run(incr_and_read) == [2, b"2"]
    await client.script_flush()
    assert await script.run(incr_and_read) == [3, b"3"]
    assert await _script_exists_calls(client) == asked_before
    await client.delete(key)
