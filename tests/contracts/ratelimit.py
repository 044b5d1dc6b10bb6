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

    async def test_hits_made_at_once_are_counted_each_against_its_own_key(self, limiter: Limiter) -> None:
        busy, quiet = key(), key()
        rates = {busy: Rate(per_s=1, burst=10), quiet: Rate(per_s=1, burst=5)}
        hits = [busy] * 15 + [quiet] * 3
        verdicts = await asyncio.gather(*(limiter.hit(k, rates[k]) for k in hits))
        assert [v.allowed for v in verdicts[:15]] == [True] * 10 + [False] * 5
        assert [v.remaining for v in verdicts[:10]] == list(range(9, -1, -1))
        assert [(v.allowed, v.remaining) for v in verdicts[15:]] == [(True, 4), (True, 3), (True, 2)]
