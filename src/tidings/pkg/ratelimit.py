"""Rate limits: a rate and a burst per key (GCRA, the token bucket as one timestamp), in Redis or in-process.

Each key holds its *theoretical arrival time* (TAT): the moment its bucket would be full again. A hit of ``cost``
moves the TAT ``cost / rate`` seconds ahead and is allowed while the TAT stays within ``burst / rate`` of now.
That is a token bucket of ``burst`` tokens refilled at ``rate`` a second, stored as one number, so the Redis
adapter is one script call (one round trip) for every hit waiting, and instances share every limit. The keys of
one call may lie in different Redis Cluster slots: the script talks to one Redis server (or a cluster proxy), as
the cache's MGET does. A hit of cost 0 only looks (would one more action be allowed now?) and changes nothing.

Redis keys: ``<prefix>:<key>`` holding the TAT in microseconds of Redis's own clock (``TIME``), so bff instances
with skewed clocks still agree; each key expires when its bucket is full again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from tidings.pkg.scripts import Script

if TYPE_CHECKING:
    import redis.asyncio as redis
    from redis.asyncio.client import Pipeline


@dataclass(frozen=True)
class Rate:
    """``per_s`` actions a second on average, ``burst`` at once."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_s > 0 and burst >= 1")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # Actions left in the burst after this one.
    remaining: int
    # Seconds until one more action would be allowed (0 when allowed now).
    retry_after_s: float


class RateLimiter(Protocol):
    """The port: ``hit`` counts ``cost`` actions of ``key`` against ``rate`` (0 only looks)."""

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Verdict: ...


def _decide(tat_us: int, now_us: int, rate: Rate, cost: int) -> tuple[Verdict, int]:
    """The verdict and the new TAT (equal to the old one when refused or looking)."""
    interval_us = 1_000_000 / rate.per_s
    tolerance_us = interval_us * rate.burst
    tat_us = max(tat_us, now_us)
    new_tat = tat_us + interval_us * max(cost, 1)
    allow_at = new_tat - tolerance_us
    if allow_at > now_us:
        return Verdict(False, 0, (allow_at - now_us) / 1e6), tat_us
    remaining = int((tolerance_us - (new_tat - now_us)) // interval_us)
    return Verdict(True, max(0, remaining), 0.0), math.ceil(new_tat) if cost > 0 else tat_us


class MemoryRateLimiter:
    """The embedded adapter (``tidings dev``, one process): keys in a bounded LRU map."""

    def __init__(self, *, max_keys: int = 100_000, clock_us: Callable[[], int] | None = None) -> None:
        self._max_keys = max_keys
        self._clock_us = clock_us or (lambda: time.monotonic_ns() // 1000)
        self._tats: OrderedDict[str, int] = OrderedDict()

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Verdict:
        now = self._clock_us()
        verdict, tat = _decide(self._tats.get(key, now), now, rate, cost)
        if verdict.allowed and cost > 0:
            self._tats[key] = tat
            self._tats.move_to_end(key)
            while len(self._tats) > self._max_keys:
                self._tats.popitem(last=False)
        return verdict


# KEYS: the keys hit, in order. ARGV: interval_us, burst and cost of each. Answers allowed, remaining and
# retry_after_us of each, flat. One TIME for all of them; a key hit twice sees its first hit.
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
        calls = [batch[start : start + _SCRIPT_KEYS] for start in range(0, len(batch), _SCRIPT_KEYS)]

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
