"""Rate limits per user (sends, typing, open connections) and per username (failed logins), over a shared
``RateLimiter`` (``tidings.pkg.ratelimit``: Redis in production, in-process under ``tidings dev``).

A limited action raises 429 RATE_LIMITED with ``metadata.retry_after_s``; the HTTP layer turns it into a
``Retry-After`` header, the sockets into an error frame. Logins are limited on *failures* of a username,
counted the same whether the account exists or not, so the limit reveals nothing; the check runs before the
password hash, so a flood of wrong passwords costs no hashing once limited. The limiter failing (Redis down)
lets the action through: limits protect the service, and must not take it down with them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tidings.api.account.v1 import errors as account_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.pkg.logger import Logger
from tidings.pkg.ratelimit import Rate, RateLimiter, Verdict

T = TypeVar("T")


@dataclass(frozen=True)
class QuotaOptions:
    """The limits (settings ``limits``, and ``realtime`` for typing); ``enabled=False`` counts nothing."""

    send: Rate
    typing: Rate
    # Failed logins of one username: ``burst`` in a row, then one every ``1 / per_s`` seconds.
    login: Rate
    connections_per_user: int
    enabled: bool = True


class Quotas:
    def __init__(self, limiter: RateLimiter, options: QuotaOptions, logger: Logger) -> None:
        self._limiter = limiter
        self._options = options
        self._log = logger

    @property
    def connections_per_user(self) -> int | None:
        return self._options.connections_per_user if self._options.enabled else None

    async def send(self, user_id: int) -> None:
        """Count one message of ``user_id``; 429 if they send faster than the limit."""
        await self._require(f"send:{user_id}", self._options.send, 1, "too many messages; slow down")

    async def typing(self, user_id: int) -> None:
        """Count one typing frame of ``user_id``, whichever of their connections it came on."""
        await self._require(f"typing:{user_id}", self._options.typing, 1, "typing frames come too often")

    async def login(self, username: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` unless ``username`` failed too often lately; a wrong password counts one failure."""
        key = f"login:{hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]}"
        await self._require(key, self._options.login, 0, "too many failed logins for this username; wait")
        try:
            return await attempt()
        except errors.TidingsError as error:
            if account_errors.is_invalid_credentials(error):
                await self._hit(key, self._options.login, 1)
            raise

    def too_many_connections(self) -> errors.TidingsError:
        limit = str(self._options.connections_per_user)
        return common_errors.rate_limited(
            f"at most {limit} open connections per user; close one", retry_after_s="5", limit=limit
        )

    async def _require(self, key: str, rate: Rate, cost: int, message: str) -> None:
        verdict = await self._hit(key, rate, cost)
        if not verdict.allowed:
            wait = max(1, math.ceil(verdict.retry_after_s))
            raise common_errors.rate_limited(message, retry_after_s=str(wait), limit=str(rate.burst))

    async def _hit(self, key: str, rate: Rate, cost: int) -> Verdict:
        if not self._options.enabled:
            return Verdict(True, rate.burst, 0.0)
        try:
            return await self._limiter.hit(key, rate, cost)
        except Exception as exc:
            self._log.warning("rate limiter unavailable; allowing", error=repr(exc), key=key.partition(":")[0])
            return Verdict(True, 0, 0.0)
