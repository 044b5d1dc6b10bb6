"""Rate limits per user (sends, typing, open connections), per username (failed logins) and per client address
(failed logins and refreshes, registrations), over a shared ``RateLimiter`` (``tidings.pkg.ratelimit``: Redis in
production, in-process under ``tidings dev``).

A limited action raises 429 RATE_LIMITED with ``metadata.retry_after_s``; the HTTP layer turns it into a
``Retry-After`` header, the sockets into an error frame. Logins are limited on *failures* of a username and of an
address, counted the same whether the account exists or not, so the limit reveals nothing; the check runs before
the password hash, so a flood of wrong passwords costs no hashing once limited. Failures are limited in steps
(``Steps``): the more of them in a row, the longer the wait for the next attempt. The limiter failing (Redis down)
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
class Steps:
    """A limit on failures whose wait grows with them: every failure counts on each rate, and an attempt is let
    through only while every rate would allow one more (a short burst with a short wait, then a longer one)."""

    rates: tuple[Rate, ...]

    @classmethod
    def growing(cls, failures: int, backoff_s: float, factor: int) -> Steps:
        """``failures`` in a row, then one every ``backoff_s``; after ``factor`` times as many, one every
        ``factor`` times as long."""
        return cls((Rate(1 / backoff_s, failures), Rate(1 / (backoff_s * factor), failures * factor)))


@dataclass(frozen=True)
class QuotaOptions:
    """The limits (settings ``limits``, and ``realtime`` for typing); ``enabled=False`` counts nothing."""

    send: Rate
    typing: Rate
    # Failed logins of one username.
    login: Steps
    # Failed logins and refreshes of one client address.
    address: Steps
    # Accounts registered from one client address.
    registration: Rate
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

    async def login(self, username: str, address: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` unless ``username`` or ``address`` failed too often lately; a wrong password counts one
        failure of each."""
        limits = [(f"login:{_digest(username.strip().lower())}", self._options.login), self._of_address(address)]
        await self._require_steps(limits, "too many failed logins; wait")
        try:
            return await attempt()
        except errors.TidingsError as error:
            if account_errors.is_invalid_credentials(error):
                await self._fail(limits)
            raise

    async def refresh(self, address: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` unless ``address`` failed too often lately; a refused refresh token counts one failure."""
        limits = [self._of_address(address)]
        await self._require_steps(limits, "too many failed attempts from this address; wait")
        try:
            return await attempt()
        except errors.TidingsError as error:
            if error.code == 401:
                await self._fail(limits)
            raise

    async def register(self, address: str) -> None:
        """Count one registration from ``address``; 429 beyond the limit."""
        await self._require(
            f"register:{_digest(address)}", self._options.registration, 1, "too many accounts from this address"
        )

    def _of_address(self, address: str) -> tuple[str, Steps]:
        return f"address:{_digest(address)}", self._options.address

    async def _require_steps(self, limits: list[tuple[str, Steps]], message: str) -> None:
        """429 unless every step of every limit would let one more attempt through (nothing is counted)."""
        waits = [
            (verdict.retry_after_s, rate)
            for key, steps in limits
            for step, rate in enumerate(steps.rates)
            if not (verdict := await self._hit(f"{key}:{step}", rate, 0)).allowed
        ]
        if waits:
            wait, rate = max(waits, key=lambda found: found[0])
            raise common_errors.rate_limited(message, retry_after_s=str(max(1, math.ceil(wait))), limit=str(rate.burst))

    async def _fail(self, limits: list[tuple[str, Steps]]) -> None:
        for key, steps in limits:
            for step, rate in enumerate(steps.rates):
                await self._hit(f"{key}:{step}", rate, 1)

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


def _digest(value: str) -> str:
    """A key part that is not the value itself (usernames and addresses are not kept in the limiter's store)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]
