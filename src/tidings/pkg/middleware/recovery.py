"""What a request answers when its handler raised: shared by the HTTP and gRPC recovery middleware."""

from __future__ import annotations

from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import db
from tidings.pkg.errors import TidingsError, carried


def answer(exc: Exception) -> tuple[TidingsError | None, str | None]:
    """The error ``exc`` answers and the warning to log, if any: an error of ours answers itself (a task group's
    first); a dependency out of reach answers 503 (clients retry, as after any outage) with a warning. None for a
    fault of ours: the caller answers 500 INTERNAL and logs the stack."""
    failure = carried(exc)
    if failure is not None:
        return failure, None
    if db.unreachable(exc):
        return common_errors.unavailable("the database is unavailable; retry shortly"), "database unreachable"
    return None, None
