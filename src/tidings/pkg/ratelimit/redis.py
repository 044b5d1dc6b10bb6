"""The GCRA limiter in Redis: one script call (one round trip) for every hit waiting, shared by every instance.

Redis keys: ``<prefix>:<key>`` holding the TAT in microseconds of Redis's own clock (``TIME``), so bff instances
with skewed clocks still agree; each key expires when its bucket is full again. On a Redis Cluster the hits of a
round trip are split into one script call per slot (``tidings.pkg.rediscluster``), still pipelined together.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from tidings.pkg.ratelimit import Rate, Verdict
from tidings.pkg.rediscluster import slot_groups
from tidings.pkg.scripts import Script

if TYPE_CHECKING:
    import redis.asyncio as redis
    from redis.asyncio.client import Pipeline


_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local answers = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = interval * tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * math.max(cost, 1)
  local allow_at = new_tat - tolerance
  if allow_at > now then
    answers[#answers + 1] = 0
    answers[#answers + 1] = 0
    answers[#answers + 1] = math.ceil(allow_at - now)
  else
    if cost > 0 then
      redis.call('SET', key, string.format('%d', math.ceil(new_tat)), 'PX', math.ceil((new_tat - now) / 1000) + 1)
    end
    answers[#answers + 1] = 1
    answers[#answers + 1] = math.floor((tolerance - (new_tat - now)) / interval)
    answers[#answers + 1] = 0
  end
end
return answers
"""
# Keys of one script call at most: a call blocks Redis while it runs.
_SCRIPT_KEYS = 500


class RedisRateLimiter:
    """Limits shared by every instance. Hits made while a round trip is in flight wait and go together in the
    next one (one script call), so a busy instance pays one round trip per batch, not per hit."""

    def __init__(self, client: redis.Redis, *, prefix: str = "rl") -> None:
        self._client = client
        self._prefix = prefix
        self._script = Script(client, _GCRA)
        self._waiting: list[tuple[str, Rate, int, asyncio.Future[Verdict]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Verdict:
        answer: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiting.append((f"{self._prefix}:{key}", rate, cost, answer))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="rate limiter flush")
        return await answer

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._round_trip(batch)
        finally:
            self._flusher = None

    async def _round_trip(self, batch: list[tuple[str, Rate, int, asyncio.Future[Verdict]]]) -> None:
        calls = [
            [batch[index] for index in group[start : start + _SCRIPT_KEYS]]
            for group in slot_groups(self._client, [key for key, *_ in batch])
            for start in range(0, len(group), _SCRIPT_KEYS)
        ]

        def fill(pipe: Pipeline) -> None:
            for hits in calls:
                args = [arg for _, rate, cost, _ in hits for arg in (1_000_000 / rate.per_s, rate.burst, cost)]
                self._script.call(pipe, [key for key, *_ in hits], args)

        try:
            answers: list[object] = await self._script.run(fill, raise_on_error=False)
        except Exception as exc:
            answers = [exc] * len(calls)
        for hits, answer in zip(calls, answers, strict=True):
            for index, (*_, waiting) in enumerate(hits):
                if waiting.done():
                    continue
                if isinstance(answer, Exception):
                    waiting.set_exception(answer)
                    continue
                allowed, remaining, retry_after_us = (
                    int(v) for v in cast(list[int], answer)[3 * index : 3 * index + 3]
                )
                waiting.set_result(Verdict(bool(allowed), max(0, remaining), retry_after_us / 1e6))
