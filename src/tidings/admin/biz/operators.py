"""Operators: creating them, logging them in (argon2, a lockout per username, an optional TOTP code) and the
short-lived sessions that follow.

A failed login answers the same whether the operator exists or not: the password is checked against a stand-in
hash when there is no such operator (the same work), failures are counted per username whatever it is, and a
lockout holds for any username. A session is a random token of which only a hash is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tidings.admin.biz.model import Caller, Operator, Role, SignedIn
from tidings.admin.biz.ports import LoginFailures, OperatorRepo, PasswordHasher, SessionRepo
from tidings.api.admin.v1 import errors as admin_errors
from tidings.pkg import errors
from tidings.pkg.clock import Clock

MIN_PASSWORD = 12
MAX_PASSWORD = 128


class SecondFactor(Protocol):
    """Time-based one-time codes (RFC 6238)."""

    def new_secret(self) -> str: ...

    def verify(self, secret: str, code: str) -> bool: ...

    def provisioning_uri(self, secret: str, username: str) -> str: ...


@dataclass(frozen=True)
class OperatorOptions:
    session_ttl_s: float = 1800.0
    max_failures: int = 5
    lock_s: float = 900.0


class Operators:
    def __init__(
        self,
        repo: OperatorRepo,
        sessions: SessionRepo,
        failures: LoginFailures,
        hasher: PasswordHasher,
        second_factor: SecondFactor,
        next_id: Callable[[], int],
        clock: Clock,
        options: OperatorOptions,
    ) -> None:
        self._repo = repo
        self._sessions = sessions
        self._failures = failures
        self._hasher = hasher
        self._second_factor = second_factor
        self._next_id = next_id
        self._clock = clock
        self._options = options
        self._stand_in: str | None = None

    async def create(self, username: str, password: str, role: Role, *, totp: bool = False) -> tuple[Operator, str]:
        """A new operator, and their TOTP secret ("" without a second factor). OPERATOR_EXISTS, INVALID_ARGUMENT."""
        name = username.strip().lower()
        problems = {}
        if not 3 <= len(name) <= 64 or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in name):
            problems["username"] = "3-64 characters: ASCII letters, digits, '_', '.' and '-'"
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            problems["password"] = f"{MIN_PASSWORD}-{MAX_PASSWORD} characters"
        errors.raise_for_fields(problems)
        secret = self._second_factor.new_secret() if totp else ""
        operator = Operator(
            id=self._next_id(),
            username=name,
            role=role,
            created_at_ms=self._clock.now_ms(),
            password_hash=await self._hasher.hash(password),
            totp_secret=secret,
        )
        await self._repo.add(operator)
        return operator.public, secret

    def provisioning_uri(self, operator: Operator, secret: str) -> str:
        """What an authenticator app scans to learn ``secret``."""
        return self._second_factor.provisioning_uri(secret, operator.username)

    async def login(self, username: str, password: str, code: str = "") -> SignedIn:
        """A session for the operator; OPERATOR_CREDENTIALS_INVALID or OPERATOR_LOGIN_LOCKED, the same for any
        username."""
        name = username.strip().lower()
        now = self._clock.now_ms()
        locked_until = await self._failures.locked_until(name)
        if locked_until > now:
            raise _locked(locked_until - now)
        operator = await self._repo.by_username(name)
        genuine = await self._hasher.verify(
            operator.password_hash if operator is not None else await self._stand_in_hash(), password
        )
        if operator is None or not genuine or not self._second_factor_holds(operator, code):
            locked_until = await self._failures.failed(
                name, now, max_failures=self._options.max_failures, lock_ms=int(self._options.lock_s * 1000)
            )
            if locked_until > now:
                raise _locked(locked_until - now)
            raise admin_errors.operator_credentials_invalid("wrong username, password or one-time code")
        await self._failures.clear(name)
        token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = now + int(self._options.session_ttl_s * 1000)
        await self._sessions.add(token_hash(token), operator.id, csrf_token, now, expires_at)
        return SignedIn(operator.public, token, csrf_token, expires_at)

    def _second_factor_holds(self, operator: Operator, code: str) -> bool:
        return not operator.totp_secret or self._second_factor.verify(operator.totp_secret, code.strip())

    async def _stand_in_hash(self) -> str:
        if self._stand_in is None:
            self._stand_in = await self._hasher.hash(secrets.token_urlsafe(16))
        return self._stand_in

    async def caller(self, token: str, *, by_cookie: bool) -> Caller:
        """The operator of a live session; OPERATOR_SESSION_INVALID otherwise."""
        found = await self._sessions.find(token_hash(token), self._clock.now_ms()) if token else None
        operator = await self._repo.get(found[0]) if found is not None else None
        if found is None or operator is None:
            raise admin_errors.operator_session_invalid("log in: the operator session is missing, expired or ended")
        return Caller(operator.public, found[1], by_cookie, found[2])

    async def logout(self, token: str) -> None:
        await self._sessions.remove(token_hash(token))

    async def all(self, caller: Caller) -> list[Operator]:
        require(caller, Role.ADMIN)
        return [operator.public for operator in await self._repo.all()]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def require(caller: Caller, role: Role) -> None:
    """ROLE_REQUIRED unless the caller's role allows what ``role`` may do."""
    if not caller.operator.role.allows(role):
        raise admin_errors.role_required(
            f"this needs the {role.value} role; you are a {caller.operator.role.value}", required_role=role.value
        )


def check_csrf(caller: Caller, presented: str) -> None:
    """CSRF_TOKEN_INVALID for a change asked by cookie without the session's token (a bearer needs none)."""
    if caller.by_cookie and not hmac.compare_digest(caller.csrf_token.encode(), presented.encode()):
        raise admin_errors.csrf_token_invalid("send the session's CSRF token in X-CSRF-Token")


def _locked(remaining_ms: int) -> errors.TidingsError:
    seconds = max(1, -(-remaining_ms // 1000))
    return admin_errors.operator_login_locked("too many failed logins: try again later", retry_after_s=str(seconds))
