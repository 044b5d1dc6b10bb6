"""Sign-up, sign-in and tokens: short-lived access tokens, rotating refresh tokens, revocation on ban."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from tidings.api.account.v1 import errors as account_errors
from tidings.pkg import errors
from tidings.pkg.clock import Clock
from tidings.service.account.biz import user as rules
from tidings.service.account.biz.ports import (
    IdGen,
    PasswordHasher,
    RefreshToken,
    RefreshTokenRepo,
    RevokeCause,
    TokenCodec,
    UserEvents,
    UsernameTaken,
    UserRepo,
)
from tidings.service.account.biz.user import Account
from tidings.service.account.tokens import AccessClaims, claims_or_401
from tidings.service.account.user import Session, User


@dataclass(frozen=True)
class AuthPolicy:
    access_ttl_s: int = 900
    refresh_ttl_s: int = 30 * 24 * 3600


class Auth:
    def __init__(
        self,
        users: UserRepo,
        refresh_tokens: RefreshTokenRepo,
        hasher: PasswordHasher,
        codec: TokenCodec,
        ids: IdGen,
        clock: Clock,
        policy: AuthPolicy,
        events: UserEvents | None = None,
    ) -> None:
        self._users = users
        self._events = events
        self._refresh = refresh_tokens
        self._hasher = hasher
        self._codec = codec
        self._ids = ids
        self._clock = clock
        self._policy = policy
        self._dummy_hash: str | None = None

    async def register(self, username: str, password: str, display_name: str | None) -> Session:
        username = rules.normalize_username(username)
        problems = {
            "username": rules.username_problem(username),
            "password": rules.password_problem(password),
        }
        if display_name is not None:
            problems |= rules.profile_problems(rules.ProfileChange(display_name=display_name))
        errors.raise_for_fields({field: why for field, why in problems.items() if why})
        if (weakness := rules.password_weakness(password)) is not None:
            raise account_errors.weak_password(f"password: {weakness}", field="password")
        now = self._clock.now_ms()
        user = User(
            id=self._ids.next_id(),
            username=username,
            display_name=display_name or username,
            bio="",
            avatar_url="",
            created_at_ms=now,
        )
        account = Account(user, await self._hasher.hash(password), banned=False, tokens_valid_after_ms=0)
        try:
            await self._users.create(account)
        except UsernameTaken:
            raise account_errors.username_taken("that username is taken", username=username) from None
        if self._events is not None:
            await self._events.user_updated(user, now)
        return await self._start_session(user, family_id=None)

    async def login(self, username: str, password: str) -> Session:
        account = await self._users.get_by_username(rules.normalize_username(username))
        if account is None:
            # Spend the same time as a wrong password, so timing does not tell which usernames exist.
            await self._hasher.verify(await self._dummy(), password)
            raise account_errors.invalid_credentials("wrong username or password")
        if not await self._hasher.verify(account.password_hash, password):
            raise account_errors.invalid_credentials("wrong username or password")
        if account.banned:
            raise account_errors.user_banned("this account is suspended")
        return await self._start_session(account.user, family_id=None)

    async def refresh(self, refresh_token: str) -> Session:
        token_id, secret = _parse_refresh(refresh_token)
        now = self._clock.now_ms()
        stored = await self._refresh.get(token_id) if token_id is not None else None
        if stored is None or not hmac.compare_digest(stored.secret_hash, _digest(secret)):
            raise account_errors.token_invalid("refresh token is not valid")
        if stored.expires_at_ms <= now:
            raise account_errors.token_expired("refresh token expired; sign in again")
        if not await self._refresh.spend(stored.id, now):
            # A spent token came back: someone holds a copy. End every session of this login.
            await self._refresh.revoke_family(stored.family_id, now)
            raise account_errors.token_revoked("refresh token was already used; sign in again")
        account = await self._users.get(stored.user_id)
        if account is None or account.banned:
            raise account_errors.token_revoked("this account can no longer sign in")
        return await self._start_session(account.user, family_id=stored.family_id)

    async def verify(self, access_token: str) -> AccessClaims:
        """The token's claims if it is genuine, unexpired and not revoked by a ban since it was issued."""
        (verdict,) = await self.verify_many([access_token])
        if isinstance(verdict, errors.TidingsError):
            raise verdict
        return verdict

    async def verify_many(self, access_tokens: Sequence[str]) -> list[AccessClaims | errors.TidingsError]:
        """Each token's claims, or the error ``verify`` would raise for it alone, in order; one read of the
        accounts for all of them."""
        now = self._clock.now_ms()
        verdicts: list[AccessClaims | errors.TidingsError] = []
        for token in access_tokens:
            try:
                verdicts.append(claims_or_401(self._codec, token, now))
            except errors.TidingsError as error:
                verdicts.append(error)
        genuine = [verdict.user_id for verdict in verdicts if isinstance(verdict, AccessClaims)]
        accounts = await self._users.get_accounts(genuine) if genuine else {}
        for index, verdict in enumerate(verdicts):
            if isinstance(verdict, AccessClaims):
                account = accounts.get(verdict.user_id)
                if account is None or account.banned or verdict.issued_at_ms < account.tokens_valid_after_ms:
                    verdicts[index] = account_errors.token_revoked("access token was revoked")
        return verdicts

    async def revoke_all(
        self,
        user_id: int,
        cause: RevokeCause = RevokeCause.LOGOUT_ALL,
        *,
        ban: bool = False,
        password_hash: str | None = None,
    ) -> int:
        """End every session of the user at once ("log out everywhere"); ``ban`` also stops new sign-ins, and
        ``password_hash`` replaces the password in the same write. ``account.tokens.revoked`` tells the push job to
        close the user's live connections. Returns the instant before which tokens no longer count."""
        now = self._clock.now_ms()
        if not await self._users.revoke_tokens(user_id, now, ban=ban, password_hash=password_hash):
            raise account_errors.user_not_found("no such user", user_id=str(user_id))
        await self._refresh.revoke_user(user_id, now)
        if self._events is not None:
            await self._events.tokens_revoked(user_id, cause, now + 1)
        return now + 1

    async def _start_session(self, user: User, family_id: int | None) -> Session:
        now = self._clock.now_ms()
        await self._users.mark_active(user.id, now)
        token_id = self._ids.next_id()
        secret = secrets.token_urlsafe(32)
        await self._refresh.add(
            RefreshToken(
                id=token_id,
                user_id=user.id,
                family_id=family_id or token_id,
                secret_hash=_digest(secret),
                expires_at_ms=now + self._policy.refresh_ttl_s * 1000,
            )
        )
        access = self._codec.encode(
            AccessClaims(user_id=user.id, issued_at_ms=now, expires_at_ms=now + self._policy.access_ttl_s * 1000)
        )
        return Session(user, access, f"{token_id}.{secret}", self._policy.access_ttl_s)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


def _digest(secret: str) -> str:
    # Refresh secrets are 256 random bits: a fast hash is enough, unlike passwords.
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse_refresh(token: str) -> tuple[int | None, str]:
    """The token's id (None unless some stored id could be it: ASCII digits within 63 bits) and its secret."""
    token_id, _, secret = token.partition(".")
    if not (token_id.isascii() and token_id.isdigit() and len(token_id) <= 19) or int(token_id) >= 2**63:
        return None, secret
    return int(token_id), secret
