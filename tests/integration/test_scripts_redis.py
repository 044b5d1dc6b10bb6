"""Our Redis plumbing on the real server: the process's client counts each command and each whole pipeline as one
round trip, and a pipelined ``Script`` costs one round trip, asks no SCRIPT EXISTS and survives Redis forgetting
it (NOSCRIPT: loaded, and the pipeline run again)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from prometheus_client import REGISTRY
from redis.asyncio.client import Pipeline

from tests.integration.conftest import REDIS_URL
from tidings.bootstrap import Infra
from tidings.pkg.conf import CacheConf, Settings
from tidings.pkg.scripts import Script


@pytest.fixture
async def counted() -> AsyncIterator[redis.Redis]:
    """The Redis client a Tidings process uses (``Infra.redis``), connected already."""
    infra = Infra(Settings(cache=CacheConf(url=REDIS_URL, timeout_s=5)))
    client = infra.redis()
    await client.ping()  # the connection's own handshake is not what the tests count
    yield client
    await infra.close()


def round_trips() -> float:
    """What every counted Redis client of this process has sent so far (tests run one at a time)."""
    return REGISTRY.get_sample_value("tidings_middleware_round_trips_total", {"system": "redis"}) or 0


async def test_a_command_and_a_whole_pipeline_are_one_round_trip_each(counted: redis.Redis, redis_prefix: str) -> None:
    keys = [f"{redis_prefix}:{{conv:1}}:{n}" for n in range(100)]
    before = round_trips()
    async with counted.pipeline(transaction=False) as pipe:
        for n, key in enumerate(keys):
            pipe.set(key, n, ex=60)
        assert await pipe.execute() == [True] * 100
    assert round_trips() == before + 1
    assert await counted.mget(keys) == [str(n).encode() for n in range(100)]
    assert round_trips() == before + 2


async def _script_exists_calls(client: redis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_script|exists", {}).get("calls", 0))


async def test_a_pipelined_script_asks_no_script_exists_and_survives_redis_forgetting_it(
    counted: redis.Redis, redis_client: redis.Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}:counter"
    # A source of its own (the comment), so Redis has never seen it.
    script = Script(counted, f"-- {uuid.uuid4().hex}\nreturn redis.call('INCR', KEYS[1])")
    asked_before = await _script_exists_calls(redis_client)

    def incr_and_read(pipe: Pipeline) -> None:
        script.call(pipe, [key], [])
        pipe.get(key)

    # Not loaded yet: the pipeline is refused, the script loaded, and the pipeline run again.
    before = round_trips()
    assert await script.run(incr_and_read) == [1, b"1"]
    assert round_trips() == before + 3
    # Loaded: the whole pipeline, script included, is one round trip.
    assert await script.run(incr_and_read) == [2, b"2"]
    assert round_trips() == before + 4
    await redis_client.script_flush()
    assert await script.run(incr_and_read) == [3, b"3"]
    assert await _script_exists_calls(redis_client) == asked_before
