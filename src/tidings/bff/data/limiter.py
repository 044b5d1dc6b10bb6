"""The quotas' ``RateLimiter`` on the framework's GCRA limiters (``tidings.pkg.ratelimit``: Redis or in-process)."""

from __future__ import annotations

from tidings.bff.biz.quotas import Rate, Verdict
from tidings.pkg import ratelimit


class GcraRateLimiter:
    def __init__(self, limiter: ratelimit.RateLimiter) -> None:
        self._limiter = limiter
        # The quotas use a handful of rates: each is translated once.
        self._rates: dict[Rate, ratelimit.Rate] = {}

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Verdict:
        gcra = self._rates.get(rate)
        if gcra is None:
            gcra = self._rates[rate] = ratelimit.Rate(rate.per_s, rate.burst)
        verdict = await self._limiter.hit(key, gcra, cost)
        return Verdict(verdict.allowed, verdict.remaining, verdict.retry_after_s)
