"""Generated from api/ by scripts/protogen.py. Do not edit."""

# The error reasons of tidings.common.v1, from api/tidings/common/v1/error_reason.proto.
from __future__ import annotations

from tidings.pkg.errors.base import Reason, TidingsError

DOMAIN = "tidings.common.v1"

INVALID_ARGUMENT = Reason(DOMAIN, "INVALID_ARGUMENT", 400)
UNAUTHENTICATED = Reason(DOMAIN, "UNAUTHENTICATED", 401)
PERMISSION_DENIED = Reason(DOMAIN, "PERMISSION_DENIED", 403)
NOT_FOUND = Reason(DOMAIN, "NOT_FOUND", 404)
CONFLICT = Reason(DOMAIN, "CONFLICT", 409)
RATE_LIMITED = Reason(DOMAIN, "RATE_LIMITED", 429)
CANCELLED = Reason(DOMAIN, "CANCELLED", 499)
INTERNAL = Reason(DOMAIN, "INTERNAL", 500)
NOT_IMPLEMENTED = Reason(DOMAIN, "NOT_IMPLEMENTED", 501)
UNAVAILABLE = Reason(DOMAIN, "UNAVAILABLE", 503)
DEADLINE_EXCEEDED = Reason(DOMAIN, "DEADLINE_EXCEEDED", 504)
SEARCH_UNAVAILABLE = Reason(DOMAIN, "SEARCH_UNAVAILABLE", 503)

REASONS = (
    INVALID_ARGUMENT,
    UNAUTHENTICATED,
    PERMISSION_DENIED,
    NOT_FOUND,
    CONFLICT,
    RATE_LIMITED,
    CANCELLED,
    INTERNAL,
    NOT_IMPLEMENTED,
    UNAVAILABLE,
    DEADLINE_EXCEEDED,
    SEARCH_UNAVAILABLE,
)


def invalid_argument(message: str, /, **metadata: str) -> TidingsError:
    """The request is malformed; `metadata.field` names the offending field (dotted path for nested ones). (400)"""
    return INVALID_ARGUMENT.error(message, **metadata)


def is_invalid_argument(error: BaseException | None) -> bool:
    """Whether ``error`` is INVALID_ARGUMENT."""
    return INVALID_ARGUMENT.matches(error)


def unauthenticated(message: str, /, **metadata: str) -> TidingsError:
    """No credentials, or credentials that are not ours. (401)"""
    return UNAUTHENTICATED.error(message, **metadata)


def is_unauthenticated(error: BaseException | None) -> bool:
    """Whether ``error`` is UNAUTHENTICATED."""
    return UNAUTHENTICATED.matches(error)


def permission_denied(message: str, /, **metadata: str) -> TidingsError:
    """The caller is known but may not do this. (403)"""
    return PERMISSION_DENIED.error(message, **metadata)


def is_permission_denied(error: BaseException | None) -> bool:
    """Whether ``error`` is PERMISSION_DENIED."""
    return PERMISSION_DENIED.matches(error)


def not_found(message: str, /, **metadata: str) -> TidingsError:
    """No such route or resource. (404)"""
    return NOT_FOUND.error(message, **metadata)


def is_not_found(error: BaseException | None) -> bool:
    """Whether ``error`` is NOT_FOUND."""
    return NOT_FOUND.matches(error)


def conflict(message: str, /, **metadata: str) -> TidingsError:
    """The resource changed under the request (a lost race, an already existing entity). (409)"""
    return CONFLICT.error(message, **metadata)


def is_conflict(error: BaseException | None) -> bool:
    """Whether ``error`` is CONFLICT."""
    return CONFLICT.matches(error)


def rate_limited(message: str, /, **metadata: str) -> TidingsError:
    """Too many requests; `metadata.retry_after_s` says when to try again, if known. (429)"""
    return RATE_LIMITED.error(message, **metadata)


def is_rate_limited(error: BaseException | None) -> bool:
    """Whether ``error`` is RATE_LIMITED."""
    return RATE_LIMITED.matches(error)


def cancelled(message: str, /, **metadata: str) -> TidingsError:
    """The caller went away before the answer was ready. (499)"""
    return CANCELLED.error(message, **metadata)


def is_cancelled(error: BaseException | None) -> bool:
    """Whether ``error`` is CANCELLED."""
    return CANCELLED.matches(error)


def internal(message: str, /, **metadata: str) -> TidingsError:
    """A bug or an unexpected failure; the message never carries internals, the trace id finds them. (500)"""
    return INTERNAL.error(message, **metadata)


def is_internal(error: BaseException | None) -> bool:
    """Whether ``error`` is INTERNAL."""
    return INTERNAL.matches(error)


def not_implemented(message: str, /, **metadata: str) -> TidingsError:
    """The method does not exist on the server that answered (version skew). (501)"""
    return NOT_IMPLEMENTED.error(message, **metadata)


def is_not_implemented(error: BaseException | None) -> bool:
    """Whether ``error`` is NOT_IMPLEMENTED."""
    return NOT_IMPLEMENTED.matches(error)


def unavailable(message: str, /, **metadata: str) -> TidingsError:
    """A dependency is down or overloaded; retry with backoff. (503)"""
    return UNAVAILABLE.error(message, **metadata)


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` is UNAVAILABLE."""
    return UNAVAILABLE.matches(error)


def deadline_exceeded(message: str, /, **metadata: str) -> TidingsError:
    """The request's deadline passed before the work was done. (504)"""
    return DEADLINE_EXCEEDED.error(message, **metadata)


def is_deadline_exceeded(error: BaseException | None) -> bool:
    """Whether ``error`` is DEADLINE_EXCEEDED."""
    return DEADLINE_EXCEEDED.matches(error)


def search_unavailable(message: str, /, **metadata: str) -> TidingsError:
    """The search index (message and user search) does not answer; retry with backoff. Sending, history and everything
    else keep working meanwhile. (503)
    """
    return SEARCH_UNAVAILABLE.error(message, **metadata)


def is_search_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` is SEARCH_UNAVAILABLE."""
    return SEARCH_UNAVAILABLE.matches(error)
