"""Checking access tokens in the bff: signature and expiry here on every request, revocation known to account.

A request's token is decoded and checked locally (HS256 with the shared secret, expiry against the clock), so a
forged, altered or expired token never costs a round trip. Revocation ("log out everywhere", a ban) is account's:
it moves the user's "tokens issued before this instant no longer count" forward. The bff asks account about a
user's token and remembers the answer for ``recheck_s``:

- a token account accepted proves every token of that user issued at or after it was valid at that moment (the
  instant only moves forward), so within ``recheck_s`` such tokens pass without asking again;
- a token account refused as revoked stays refused, and so does every token of that user issued at or before it.

So a revocation takes effect on every request and every live stream within ``recheck_s`` (plus the stream
re-verify interval), while a steady stream of requests costs one call to account per user per ``recheck_s``.
Concurrent checks of one user share one call.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.api.account.v1 import errors as account_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Identity
from tidings.pkg.errors import TidingsError
from tidings.service.account.tokens import AccessClaims, TokenDecoder, claims_or_401

# How long account's "this user's tokens from this instant on are valid" is trusted: the bound on how late a
# revocation or a ban takes effect in this bff.
RECHECK_S = 5.0
# Users remembered at most; the least recently checked are forgotten first (they are asked again, nothing else).
MAX_USERS = 200_000


@dataclass
class _Known:
    # Tokens issued at or after this were valid at ``checked_ms`` (None: no accepted token known).
    valid_from_ms: int | None = None
    checked_ms: int = 0
    # Tokens issued at or before this are revoked for good (None: none known).
    revoked_through_ms: int | None = None


class TokenVerifier:
    """``identify`` for the bff: local signature and expiry check, revocation asked of account at most every
    ``recheck_s`` per user (``remote`` is account's own full check)."""

    def __init__(
        self,
        decoder: TokenDecoder,
        remote: Callable[[str], Awaitable[Identity]],
        clock: Callable[[], int],
        *,
        recheck_s: float = RECHECK_S,
        max_users: int = MAX_USERS,
    ) -> None:
        self._decoder = decoder
        self._remote = remote
        self._clock = clock
        self._recheck_ms = int(recheck_s * 1000)
        self._max_users = max_users
        self._known: OrderedDict[int, _Known] = OrderedDict()
        self._asking: dict[tuple[int, int], asyncio.Future[Identity]] = {}

    async def identify(self, access_token: str) -> Identity:
        now = self._clock()
        claims = claims_or_401(self._decoder, access_token, now)
        identity = Identity(claims.user_id, claims.expires_at_ms)
        known = self._known.get(claims.user_id)
        if known is not None:
            if known.revoked_through_ms is not None and claims.issued_at_ms <= known.revoked_through_ms:
                raise account_errors.token_revoked("access token was revoked")
            if (
                known.valid_from_ms is not None
                and claims.issued_at_ms >= known.valid_from_ms
                and now - known.checked_ms < self._recheck_ms
            ):
                return identity
        await self._ask(access_token, claims)
        return identity

    async def _ask(self, access_token: str, claims: AccessClaims) -> None:
        # One call per user and issue instant at a time: a burst of requests with one token waits for one answer.
        key = (claims.user_id, claims.issued_at_ms)
        if (running := self._asking.get(key)) is not None:
            await asyncio.shield(running)
            return
        future: asyncio.Future[Identity] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        try:
            asked_at = self._clock()
            answer = await self._remote(access_token)
        except Exception as exc:
            if isinstance(exc, TidingsError) and account_errors.is_token_revoked(exc):
                self._learn_revoked(claims)
            self._fail(future, exc)
            raise
        except BaseException:  # cancelled: the waiters did not ask to be, so they get a retryable error
            self._fail(future, common_errors.unavailable("cannot verify the token now; retry shortly"))
            raise
        else:
            self._learn_valid(claims, asked_at)
            future.set_result(answer)
        finally:
            del self._asking[key]

    def _entry(self, user_id: int) -> _Known:
        known = self._known.get(user_id)
        if known is None:
            known = self._known[user_id] = _Known()
            while len(self._known) > self._max_users:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(user_id)
        return known

    @staticmethod
    def _fail(future: asyncio.Future[Identity], exc: Exception) -> None:
        future.set_exception(exc)
        future.exception()  # marked retrieved: only the waiters, if any, raise it again

    def _learn_valid(self, claims: AccessClaims, asked_at_ms: int) -> None:
        known = self._entry(claims.user_id)
        # Only the newest answer counts: an older one may predate a revocation between the two.
        if asked_at_ms >= known.checked_ms:
            known.valid_from_ms = claims.issued_at_ms
            known.checked_ms = asked_at_ms

    def _learn_revoked(self, claims: AccessClaims) -> None:
        known = self._entry(claims.user_id)
        known.revoked_through_ms = max(known.revoked_through_ms or 0, claims.issued_at_ms)
        if known.valid_from_ms is not None and known.valid_from_ms <= known.revoked_through_ms:
            known.valid_from_ms = None
