"""Rate limits: a rate and a burst per key (GCRA, the token bucket as one timestamp), in Redis or in-process.

Each key holds its *theoretical arrival time* (TAT): the moment its bucket would be full again. A hit of ``cost``
moves the TAT ``cost / rate`` seconds ahead and is allowed while the TAT stays within ``burst / rate`` of now.
That is a token bucket of ``burst`` tokens refilled at ``rate`` a second, stored as one number, so the Redis
adapter is one script call (one round trip) for every hit waiting, and instances share every limit (on a Redis
Cluster, one script call per slot, pipelined in one round trip per node). A hit of cost 0 only looks (would one
more action be allowed now?) and changes nothing.

The port, its types and the in-process adapter are here, free of any driver, so use cases may take them;
``ratelimit.redis`` is the shared one.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


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
