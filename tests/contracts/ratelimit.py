"""The behaviour every rate limiter adapter must have; run in-process (unit) and on Redis (integration).

A subclass provides a ``limiter`` fixture: an empty limiter on the real clock (Redis keeps its own time), so the
refill is tested with rates high enough that waiting for one token takes a few tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

from tidings.pkg.ratelimit import Rate, Verdict


class Limiter(Protocol):
    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Verdict: ...


def key() -> str:
    return uuid.uuid4().hex


class RateLimiterContract:
    async def test_a_burst_is_allowed_then_refused_with_the_time_to_wait(self, limiter: Limiter) -> None:
        rate, k = Rate(per_s=1, burst=3), key()
        verdicts = [await limiter.hit(k, rate) for _ in range(4)]
        assert [v.allowed for v in verdicts] == [True, True, True, False]
        assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
        assert 0 < verdicts[3].retry_after_s <= 1.05

    async def test_keys_are_limited_apart(self, limiter: Limiter) -> None:
        rate, first, second = Rate(per_s=1, burst=1), key(), key()
        assert (await limiter.hit(first, rate)).allowed
        assert not (await limiter.hit(first, rate)).allowed
        assert (await limiter.hit(second, rate)).allowed

    async def test_a_look_of_cost_zero_consumes_nothing(self, limiter: Limiter) -> None:
        rate, k = Rate(per_s=1, burst=2), key()
        for _ in range(5):
            assert (await limiter.hit(k, rate, 0)).allowed
        assert (await limiter.hit(k, rate)).allowed
        assert (await limiter.hit(k, rate)).allowed
        assert not (await limiter.hit(k, rate, 0)).allowed
        assert not (await limiter.hit(k, rate)).allowed

    async def test_the_bucket_refills_at_the_rate(self, limiter: Limiter) -> None:
        rate, k = Rate(per_s=20, burst=1), key()
        assert (await limiter.hit(k, rate)).allowed
        refused = await limiter.hit(k, rate)
        assert not refused.allowed
        await asyncio.sleep(refused.retry_after_s + 0.02)
        assert (await limiter.hit(k, rate)).allowed
