"""Generated from api/ by scripts/protogen.py. Do not edit."""

# The error reasons of tidings.admin.v1, from api/tidings/admin/v1/error_reason.proto.
from __future__ import annotations

from tidings.pkg.errors.base import Reason, TidingsError

DOMAIN = "tidings.admin.v1"

OPERATOR_CREDENTIALS_INVALID = Reason(DOMAIN, "OPERATOR_CREDENTIALS_INVALID", 401)
OPERATOR_LOGIN_LOCKED = Reason(DOMAIN, "OPERATOR_LOGIN_LOCKED", 429)
OPERATOR_SESSION_INVALID = Reason(DOMAIN, "OPERATOR_SESSION_INVALID", 401)
ROLE_REQUIRED = Reason(DOMAIN, "ROLE_REQUIRED", 403)
CSRF_TOKEN_INVALID = Reason(DOMAIN, "CSRF_TOKEN_INVALID", 403)
OPERATOR_EXISTS = Reason(DOMAIN, "OPERATOR_EXISTS", 409)
AUDIT_UNAVAILABLE = Reason(DOMAIN, "AUDIT_UNAVAILABLE", 503)

REASONS = (
    OPERATOR_CREDENTIALS_INVALID,
    OPERATOR_LOGIN_LOCKED,
    OPERATOR_SESSION_INVALID,
    ROLE_REQUIRED,
    CSRF_TOKEN_INVALID,
    OPERATOR_EXISTS,
    AUDIT_UNAVAILABLE,
)


def operator_credentials_invalid(message: str, /, **metadata: str) -> TidingsError:
    """Wrong username, password or one-time code; the same answer whether or not the operator exists. (401)"""
    return OPERATOR_CREDENTIALS_INVALID.error(message, **metadata)


def is_operator_credentials_invalid(error: BaseException | None) -> bool:
    """Whether ``error`` is OPERATOR_CREDENTIALS_INVALID."""
    return OPERATOR_CREDENTIALS_INVALID.matches(error)


def operator_login_locked(message: str, /, **metadata: str) -> TidingsError:
    """Too many failed logins for this username: try again after `Retry-After` seconds (whether or not it exists).
    (429)
    """
    return OPERATOR_LOGIN_LOCKED.error(message, **metadata)


def is_operator_login_locked(error: BaseException | None) -> bool:
    """Whether ``error`` is OPERATOR_LOGIN_LOCKED."""
    return OPERATOR_LOGIN_LOCKED.matches(error)


def operator_session_invalid(message: str, /, **metadata: str) -> TidingsError:
    """No operator session: missing, unknown, expired or ended (log in again). (401)"""
    return OPERATOR_SESSION_INVALID.error(message, **metadata)


def is_operator_session_invalid(error: BaseException | None) -> bool:
    """Whether ``error`` is OPERATOR_SESSION_INVALID."""
    return OPERATOR_SESSION_INVALID.matches(error)


def role_required(message: str, /, **metadata: str) -> TidingsError:
    """The operator's role does not allow this call; `metadata.required_role` names the role that does. (403)"""
    return ROLE_REQUIRED.error(message, **metadata)


def is_role_required(error: BaseException | None) -> bool:
    """Whether ``error`` is ROLE_REQUIRED."""
    return ROLE_REQUIRED.matches(error)


def csrf_token_invalid(message: str, /, **metadata: str) -> TidingsError:
    """A state-changing call by cookie without the session's CSRF token in `X-CSRF-Token`. (403)"""
    return CSRF_TOKEN_INVALID.error(message, **metadata)


def is_csrf_token_invalid(error: BaseException | None) -> bool:
    """Whether ``error`` is CSRF_TOKEN_INVALID."""
    return CSRF_TOKEN_INVALID.matches(error)


def operator_exists(message: str, /, **metadata: str) -> TidingsError:
    """An operator already has this username. (409)"""
    return OPERATOR_EXISTS.error(message, **metadata)


def is_operator_exists(error: BaseException | None) -> bool:
    """Whether ``error`` is OPERATOR_EXISTS."""
    return OPERATOR_EXISTS.matches(error)


def audit_unavailable(message: str, /, **metadata: str) -> TidingsError:
    """The audit log could not record the action, so it was not taken. (503)"""
    return AUDIT_UNAVAILABLE.error(message, **metadata)


def is_audit_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` is AUDIT_UNAVAILABLE."""
    return AUDIT_UNAVAILABLE.matches(error)
