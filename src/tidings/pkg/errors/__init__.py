"""One error type across HTTP and gRPC (the Kratos model): ``TidingsError``, its ``Reason`` and input checks.

Each contract's reasons come as typed helpers generated from its ``error_reason.proto``:


    raise chat_errors.conversation_not_found("no such conversation", conversation_id="42")
    if chat_errors.is_conversation_not_found(error): ...

Nothing here imports a framework, so ``biz`` code may use it; ``tidings.pkg.errors.grpc`` and ``.http`` put
errors on the wire.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

# The framework's own reasons (INVALID_ARGUMENT, INTERNAL, ...). Their module imports ``errors.base``, which runs
# this package first: read them when called, never while importing.
from tidings.api.common.v1 import errors as common
from tidings.pkg.errors.base import FieldViolation, Reason, TidingsError

__all__ = [
    "FieldViolation",
    "Reason",
    "TidingsError",
    "carried",
    "invalid_fields",
    "raise_for_fields",
    "reason_for_code",
    "translated",
]


@functools.cache
def _generic_by_code() -> dict[int, Reason]:
    # The first reason of each code: a bare 503 is UNAVAILABLE, not the more specific SEARCH_UNAVAILABLE after it.
    generic: dict[int, Reason] = {}
    for reason in common.REASONS:
        generic.setdefault(reason.code, reason)
    return generic


def reason_for_code(code: int) -> Reason:
    """The shared reason of a bare code, for errors that arrive without one (a gRPC status, an HTTP 404 route)."""
    generic = _generic_by_code()
    if code in generic:
        return generic[code]
    return common.INVALID_ARGUMENT if 400 <= code < 500 else common.INTERNAL


def invalid_fields(violations: Sequence[FieldViolation], reason: Reason | None = None) -> TidingsError:
    """Invalid input (INVALID_ARGUMENT unless ``reason`` says otherwise): ``metadata.field`` lists the bad fields'
    dotted paths (comma-separated, in order) and the message says what is wrong with each; ``violations`` keeps them
    apart for google.rpc.BadRequest."""
    reason = reason or common.INVALID_ARGUMENT
    fields = dict.fromkeys(violation.field for violation in violations if violation.field)
    message = "; ".join(f"{v.field}: {v.description}" if v.field else v.description for v in violations)
    metadata = {"field": ",".join(fields)} if fields else {}
    return TidingsError(reason.code, reason.name, message, metadata, domain=reason.domain, violations=violations)


def carried(exc: BaseException) -> TidingsError | None:
    """The ``TidingsError`` that ``exc`` is or, for a task group's failure (an exception group), the first of its
    errors when every one is a ``TidingsError`` (look-ups run side by side that failed alike, such as two pages of
    a conversation that does not exist); None when anything else failed, which is a fault of ours."""
    if isinstance(exc, BaseExceptionGroup):
        domain, rest = exc.split(TidingsError)
        if domain is None or rest is not None:
            return None
        first: BaseException = domain
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        exc = first
    return exc if isinstance(exc, TidingsError) else None


def raise_for_fields(problems: Mapping[str, str]) -> None:
    """Raise INVALID_ARGUMENT for ``{field: what is wrong}`` if there is any problem; a use case's input check."""
    if problems:
        raise invalid_fields([FieldViolation(field, description) for field, description in problems.items()])


@contextmanager
def translated(caught: tuple[type[Exception], ...], into: Callable[[str], Exception], what: str) -> Iterator[None]:
    """An adapter's boundary: a driver failure of ``caught`` raised inside becomes the domain's ``into`` (such as
    a job's ``Unavailable``), saying ``what`` failed; anything else passes through as it is."""
    try:
        yield
    except caught as exc:
        raise into(f"{what}: {exc!r}") from exc
