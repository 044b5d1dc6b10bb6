"""What operators (the admin module) do to accounts: look users up, ban and unban them, reset their password.

Each action names the operator and a reason, logged here at INFO; the audit log is the admin module's. Banning and
resetting revoke every token through ``Auth.revoke_all``, so the user's live connections close at once
(``account.tokens.revoked``). A generated password is answered once and never logged.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from tidings.api.account.v1 import errors as account_errors
from tidings.pkg.clock import Clock
from tidings.pkg.logger import Logger
from tidings.service.account.biz import user as rules
from tidings.service.account.biz.auth import Auth
from tidings.service.account.biz.ports import PasswordHasher, RevokeCause, UserRepo
from tidings.service.account.biz.user import Account
from tidings.service.account.user import User

# 20 URL-safe characters: 120 random bits, typed by hand once and then changed by the user.
_TEMPORARY_PASSWORD_BYTES = 15


@dataclass(frozen=True)
class OperatorAction:
    """Who acts and why (checked by the contract: an operator id and a reason of 1-500 characters)."""

    operator_id: int
    reason: str


@dataclass(frozen=True)
class UserRecord:
    """A user as operators see them: the profile and the account state."""

    user: User
    banned: bool
    last_active_at_ms: int | None

    @classmethod
    def of(cls, account: Account) -> UserRecord:
        return cls(account.user, account.banned, account.last_active_at_ms)


@dataclass(frozen=True)
class Change:
    """A user before and after an action."""

    before: UserRecord
    after: UserRecord


class Operators:
    def __init__(self, users: UserRepo, auth: Auth, hasher: PasswordHasher, clock: Clock, logger: Logger) -> None:
        self._users = users
        self._auth = auth
        self._clock = clock
        self._hasher = hasher
        self._log = logger

    async def inspect(self, user_ids: Sequence[int], usernames: Sequence[str]) -> list[UserRecord]:
        """Ids first in the order asked, then usernames (any case); unknown ones left out, each user once."""
        by_id = await self._users.get_accounts(user_ids) if user_ids else {}
        normalized = [rules.normalize_username(name) for name in usernames]
        by_name = await self._users.get_by_usernames(normalized) if normalized else {}
        found = [by_id[i] for i in user_ids if i in by_id] + [by_name[n] for n in normalized if n in by_name]
        return _once(found)

    async def ban(self, user_id: int, action: OperatorAction) -> Change:
        """Refuse the user's sign-ins and end every session; banning a banned user does it again (idempotent)."""
        before = await self._record(user_id)
        self._log.info("banning user", user_id=user_id, operator_id=action.operator_id, reason=action.reason)
        await self._auth.revoke_all(user_id, RevokeCause.BANNED, ban=True)
        return Change(before, await self._record(user_id))

    async def unban(self, user_id: int, action: OperatorAction) -> Change:
        """Let the user sign in again; tokens revoked by the ban stay revoked. Idempotent."""
        before = await self._record(user_id)
        self._log.info("unbanning user", user_id=user_id, operator_id=action.operator_id, reason=action.reason)
        if not await self._users.unban(user_id, self._clock.now_ms()):
            raise _not_found(user_id)
        return Change(before, await self._record(user_id))

    async def reset_password(self, user_id: int, action: OperatorAction) -> str:
        """Replace the password with a generated one and end every session; the new password, to answer once."""
        await self._record(user_id)
        password = secrets.token_urlsafe(_TEMPORARY_PASSWORD_BYTES)
        password_hash = await self._hasher.hash(password)
        self._log.info("resetting password", user_id=user_id, operator_id=action.operator_id, reason=action.reason)
        await self._auth.revoke_all(user_id, RevokeCause.PASSWORD_RESET, password_hash=password_hash)
        return password

    async def _record(self, user_id: int) -> UserRecord:
        account = await self._users.get(user_id)
        if account is None:
            raise _not_found(user_id)
        return UserRecord.of(account)


def _once(accounts: Sequence[Account]) -> list[UserRecord]:
    """Each account's record once, where it first appears."""
    seen: dict[int, UserRecord] = {}
    for account in accounts:
        seen.setdefault(account.user.id, UserRecord.of(account))
    return list(seen.values())


def _not_found(user_id: int) -> Exception:
    return account_errors.user_not_found("no such user", user_id=str(user_id))
