"""What the account use cases need from the outside world; ``data/`` implements each.

The access-token types (claims, expired, invalid) live in ``tidings.service.account.tokens``: the bff checks tokens too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from tidings.service.account.biz.user import Account, ProfileChange
from tidings.service.account.tokens import AccessClaims
from tidings.service.account.user import User


class UsernameTaken(Exception):
    """The store refused a second user with this username."""


class UserRepo(Protocol):
    async def create(self, account: Account) -> None:
        """Store a new account; raise ``UsernameTaken`` if the username exists."""

    async def get(self, user_id: int) -> Account | None: ...

    async def get_by_username(self, username: str) -> Account | None: ...

    async def get_accounts(self, user_ids: Sequence[int]) -> dict[int, Account]:
        """The accounts that exist among ``user_ids``, by id (one query however many)."""

    async def get_many(self, user_ids: list[int]) -> list[User]:
        """The users that exist among ``user_ids``, in no particular order."""

    async def update_profile(self, user_id: int, change: ProfileChange, now_ms: int) -> User | None: ...

    async def search(self, query: str, limit: int) -> list[User]:
        """Users whose username starts with, or whose display name contains, ``query``."""

    async def get_by_usernames(self, usernames: Sequence[str]) -> dict[str, Account]:
        """The accounts that exist among ``usernames`` (normalized), by username (one query however many)."""

    async def revoke_tokens(self, user_id: int, now_ms: int, *, ban: bool, password_hash: str | None = None) -> bool:
        """Invalidate every access token issued until now, and in the same write mark banned if ``ban`` and replace
        the password hash if one is given; False if no such user."""

    async def unban(self, user_id: int, now_ms: int) -> bool:
        """Lift the ban (tokens stay revoked); False if no such user."""

    async def mark_active(self, user_id: int, now_ms: int) -> None:
        """Record that the user signed in or refreshed a token at ``now_ms``."""


@dataclass(frozen=True)
class RefreshToken:
    id: int
    user_id: int
    # Every token descending from one login shares a family: reuse of a spent token revokes the family.
    family_id: int
    secret_hash: str
    expires_at_ms: int


class RefreshTokenRepo(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get(self, token_id: int) -> RefreshToken | None: ...

    async def spend(self, token_id: int, now_ms: int) -> bool:
        """Mark the token used, once: True for the first caller, False if it was spent or revoked."""

    async def revoke_family(self, family_id: int, now_ms: int) -> None: ...

    async def revoke_user(self, user_id: int, now_ms: int) -> None: ...


class BlockRepo(Protocol):
    async def block(self, blocker_id: int, blocked_id: int, now_ms: int) -> None: ...

    async def unblock(self, blocker_id: int, blocked_id: int) -> None: ...

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        """For each pair, in order, whether either user blocked the other (one query however many)."""


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...


class TokenCodec(Protocol):
    """Signs and checks access tokens (JWT); says nothing about revocation, which the use case checks."""

    def encode(self, claims: AccessClaims) -> str: ...

    def decode(self, token: str, now_ms: int) -> AccessClaims:
        """The claims, or ``TokenExpired`` / ``TokenInvalid``."""


class RevokeCause(Enum):
    """Why every token of a user was revoked (``account.tokens.revoked``)."""

    LOGOUT_ALL = "logout_all"
    BANNED = "banned"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a cause, not a password)


class UserEvents(Protocol):
    async def user_updated(self, user: User, at_ms: int) -> None:
        """Tell the other modules (the search index) that ``user`` was created or changed at ``at_ms``; called
        after the change committed."""

    async def tokens_revoked(self, user_id: int, cause: RevokeCause, revoked_before_ms: int) -> None:
        """Tell the other modules (the push job, which ends the user's live connections) that every token of
        ``user_id`` issued before ``revoked_before_ms`` no longer counts; called after the revocation committed."""


class IdGen(Protocol):
    def next_id(self) -> int: ...
