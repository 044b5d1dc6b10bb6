"""Generated from api/ by scripts/protogen.py. Do not edit."""

# The error reasons of tidings.account.v1, from api/tidings/account/v1/error_reason.proto.
from __future__ import annotations

from tidings.pkg.errors.base import Reason, TidingsError

DOMAIN = "tidings.account.v1"

USER_NOT_FOUND = Reason(DOMAIN, "USER_NOT_FOUND", 404)
USERNAME_TAKEN = Reason(DOMAIN, "USERNAME_TAKEN", 409)
INVALID_CREDENTIALS = Reason(DOMAIN, "INVALID_CREDENTIALS", 401)
TOKEN_EXPIRED = Reason(DOMAIN, "TOKEN_EXPIRED", 401)
TOKEN_INVALID = Reason(DOMAIN, "TOKEN_INVALID", 401)
TOKEN_REVOKED = Reason(DOMAIN, "TOKEN_REVOKED", 401)
USER_BANNED = Reason(DOMAIN, "USER_BANNED", 403)
CANNOT_BLOCK_SELF = Reason(DOMAIN, "CANNOT_BLOCK_SELF", 400)
WEAK_PASSWORD = Reason(DOMAIN, "WEAK_PASSWORD", 400)

REASONS = (
    USER_NOT_FOUND,
    USERNAME_TAKEN,
    INVALID_CREDENTIALS,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_REVOKED,
    USER_BANNED,
    CANNOT_BLOCK_SELF,
    WEAK_PASSWORD,
)


def user_not_found(message: str, /, **metadata: str) -> TidingsError:
    """No user has this id (or username). (404)"""
    return USER_NOT_FOUND.error(message, **metadata)


def is_user_not_found(error: BaseException | None) -> bool:
    """Whether ``error`` is USER_NOT_FOUND."""
    return USER_NOT_FOUND.matches(error)


def username_taken(message: str, /, **metadata: str) -> TidingsError:
    """Someone already registered this username. (409)"""
    return USERNAME_TAKEN.error(message, **metadata)


def is_username_taken(error: BaseException | None) -> bool:
    """Whether ``error`` is USERNAME_TAKEN."""
    return USERNAME_TAKEN.matches(error)


def invalid_credentials(message: str, /, **metadata: str) -> TidingsError:
    """Wrong username or password; the same answer whether or not the user exists. (401)"""
    return INVALID_CREDENTIALS.error(message, **metadata)


def is_invalid_credentials(error: BaseException | None) -> bool:
    """Whether ``error`` is INVALID_CREDENTIALS."""
    return INVALID_CREDENTIALS.matches(error)


def token_expired(message: str, /, **metadata: str) -> TidingsError:
    """The token was ours but is past its expiry: refresh it (access token) or log in again (refresh token). (401)"""
    return TOKEN_EXPIRED.error(message, **metadata)


def is_token_expired(error: BaseException | None) -> bool:
    """Whether ``error`` is TOKEN_EXPIRED."""
    return TOKEN_EXPIRED.matches(error)


def token_invalid(message: str, /, **metadata: str) -> TidingsError:
    """The token is malformed, forged or of the wrong kind. (401)"""
    return TOKEN_INVALID.error(message, **metadata)


def is_token_invalid(error: BaseException | None) -> bool:
    """Whether ``error`` is TOKEN_INVALID."""
    return TOKEN_INVALID.matches(error)


def token_revoked(message: str, /, **metadata: str) -> TidingsError:
    """The token was revoked: the user was banned, logged out everywhere, or a refresh token was reused. (401)"""
    return TOKEN_REVOKED.error(message, **metadata)


def is_token_revoked(error: BaseException | None) -> bool:
    """Whether ``error`` is TOKEN_REVOKED."""
    return TOKEN_REVOKED.matches(error)


def user_banned(message: str, /, **metadata: str) -> TidingsError:
    """The user is banned and may not log in. (403)"""
    return USER_BANNED.error(message, **metadata)


def is_user_banned(error: BaseException | None) -> bool:
    """Whether ``error`` is USER_BANNED."""
    return USER_BANNED.matches(error)


def cannot_block_self(message: str, /, **metadata: str) -> TidingsError:
    """A user cannot block themself. (400)"""
    return CANNOT_BLOCK_SELF.error(message, **metadata)


def is_cannot_block_self(error: BaseException | None) -> bool:
    """Whether ``error`` is CANNOT_BLOCK_SELF."""
    return CANNOT_BLOCK_SELF.matches(error)


def weak_password(message: str, /, **metadata: str) -> TidingsError:
    """The password is too weak: fewer than 8 characters other than spaces, or one character repeated. `metadata.field`
    is `password`. (400)
    """
    return WEAK_PASSWORD.error(message, **metadata)


def is_weak_password(error: BaseException | None) -> bool:
    """Whether ``error`` is WEAK_PASSWORD."""
    return WEAK_PASSWORD.matches(error)
