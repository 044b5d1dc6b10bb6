"""The bff's token check: signature and expiry locally, revocation from account at most every ``recheck_s``."""

from __future__ import annotations

import asyncio

import pytest

from tidings.api.account.v1 import errors as account_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.auth import TokenVerifier
from tidings.bff.biz.model import Identity
from tidings.pkg.errors import TidingsError
from tidings.service.account.token_codec import JWTCodec
from tidings.service.account.tokens import AccessClaims

SECRET = "a signing secret of at least thirty-two characters"
START_MS = 1_800_000_000_000
HOUR_MS = 3_600_000


class Account:
    """Account's side of the check: each user's "tokens issued before this instant no longer count"."""

    def __init__(self, codec: JWTCodec, clock: Clock) -> None:
        self._codec = codec
        self._clock = clock
        self.valid_after: dict[int, int] = {}
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def identify(self, token: str) -> Identity:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        claims = self._codec.decode(token, self._clock())
        if claims.issued_at_ms < self.valid_after.get(claims.user_id, 0):
            raise account_errors.token_revoked("access token was revoked")
        return Identity(claims.user_id, claims.expires_at_ms)


class Clock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codec() -> JWTCodec:
    return JWTCodec(SECRET)


@pytest.fixture
def account(codec: JWTCodec, clock: Clock) -> Account:
    return Account(codec, clock)


@pytest.fixture
def verifier(codec: JWTCodec, account: Account, clock: Clock) -> TokenVerifier:
    return TokenVerifier(codec, account.identify, clock, recheck_s=5)


def token(codec: JWTCodec, user_id: int, issued_ms: int, ttl_ms: int = HOUR_MS) -> str:
    return codec.encode(AccessClaims(user_id, issued_ms, issued_ms + ttl_ms))


async def test_a_genuine_token_is_checked_with_account_once_per_recheck_interval(
    verifier: TokenVerifier, account: Account, codec: JWTCodec, clock: Clock
) -> None:
    access = token(codec, 7, START_MS)
    for _ in range(3):
        assert (await verifier.identify(access)).user_id == 7
    assert account.calls == 1
    clock.now_ms += 5_000
    await verifier.identify(access)
    assert account.calls == 2


async def test_forged_altered_and_expired_tokens_are_refused_without_asking_account(
    verifier: TokenVerifier, account: Account, codec: JWTCodec, clock: Clock
) -> None:
    forged = JWTCodec("another secret of at least thirty-two characters!")
    cases = {
        token(forged, 7, START_MS): "TOKEN_INVALID",
        token(codec, 7, START_MS)[:-2] + "xx": "TOKEN_INVALID",
        "not a token": "TOKEN_INVALID",
        token(codec, 7, START_MS - 2 * HOUR_MS): "TOKEN_EXPIRED",
    }
    for access, reason in cases.items():
        with pytest.raises(TidingsError) as raised:
            await verifier.identify(access)
        assert (raised.value.code, raised.value.reason) == (401, reason)
    assert account.calls == 0


async def test_a_revocation_takes_effect_within_the_recheck_interval_and_stays(
    verifier: TokenVerifier, account: Account, codec: JWTCodec, clock: Clock
) -> None:
    old = token(codec, 7, START_MS)
    await verifier.identify(old)
    clock.now_ms += 1_000
    account.valid_after[7] = clock.now_ms  # "log out everywhere"
    clock.now_ms += 4_000
    with pytest.raises(TidingsError) as raised:
        await verifier.identify(old)
    assert raised.value.reason == "TOKEN_REVOKED"
    calls = account.calls
    with pytest.raises(TidingsError):
        await verifier.identify(token(codec, 7, START_MS - 500))  # issued before the refused one
    assert account.calls == calls
    fresh = token(codec, 7, clock.now_ms)  # signed in again
    assert (await verifier.identify(fresh)).user_id == 7


async def test_a_newer_token_of_a_user_rides_on_an_accepted_older_one(
    verifier: TokenVerifier, account: Account, codec: JWTCodec, clock: Clock
) -> None:
    await verifier.identify(token(codec, 7, START_MS - 1_000))
    await verifier.identify(token(codec, 7, START_MS))
    assert account.calls == 1
    await verifier.identify(token(codec, 8, START_MS))
    assert account.calls == 2  # another user is asked about on its own


async def test_concurrent_checks_of_one_token_share_one_call_and_its_answer(
    verifier: TokenVerifier, account: Account, codec: JWTCodec
) -> None:
    account.gate = asyncio.Event()
    account.valid_after[7] = START_MS + 1
    access = token(codec, 7, START_MS)
    checks = [asyncio.create_task(verifier.identify(access)) for _ in range(20)]
    await asyncio.sleep(0)
    account.gate.set()
    outcomes = await asyncio.gather(*checks, return_exceptions=True)
    assert account.calls == 1
    assert all(isinstance(o, TidingsError) and o.reason == "TOKEN_REVOKED" for o in outcomes)


async def test_account_unreachable_is_an_error_not_a_pass(codec: JWTCodec, clock: Clock) -> None:
    async def unreachable(_: str) -> Identity:
        raise common_errors.unavailable("account unavailable")

    verifier = TokenVerifier(codec, unreachable, clock)
    with pytest.raises(TidingsError) as raised:
        await verifier.identify(token(codec, 7, START_MS))
    assert raised.value.code == 503
