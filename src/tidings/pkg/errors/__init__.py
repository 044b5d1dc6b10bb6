"""One error type across HTTP and gRPC (the Kratos model): ``TidingsError`` and the typed helpers per service.

    from tidings.pkg import errors

    raise errors.chat.conversation_not_found("no such conversation", conversation_id="42")
    if errors.chat.is_conversation_not_found(error): ...

The helper modules (``account``, ``chat``, ``common``) are generated from the ``error_reason.proto`` files.
Nothing here imports a framework, so ``biz`` code may use it; ``tidings.pkg.errors.grpc`` and ``.http`` put
errors on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tidings.pkg.errors import account, chat, common
from tidings.pkg.errors.base import FieldViolation, Reason, TidingsError

__all__ = [
    "FieldViolation",
    "Reason",
    "TidingsError",
    "account",
    "chat",
    "common",
    "find",
    "invalid_fields",
    "raise_for_fields",
    "reason_for_code",
]

_REASONS = {(reason.domain, reason.name): reason for module in (account, chat, common) for reason in module.REASONS}
_GENERIC = {reason.code: reason for reason in common.REASONS}


def find(domain: str, name: str) -> Reason | None:
    """The reason ``name`` of the proto package ``domain`` (``tidings.chat.v1``), if it has one by that name."""
    return _REASONS.get((domain, name))


def reason_for_code(code: int) -> Reason:
    """The shared reason of a bare code, for errors that arrive without one (a gRPC status, an HTTP 404 route)."""
    if code in _GENERIC:
        return _GENERIC[code]
    return common.INVALID_ARGUMENT if 400 <= code < 500 else common.INTERNAL


def invalid_fields(violations: Sequence[FieldViolation], reason: Reason = common.INVALID_ARGUMENT) -> TidingsError:
    """Invalid input: ``metadata.field`` lists the bad fields' dotted paths (comma-separated, in order) and the
    message says what is wrong with each; ``violations`` keeps them apart for google.rpc.BadRequest."""
    fields = dict.fromkeys(violation.field for violation in violations if violation.field)
    message = "; ".join(f"{v.field}: {v.description}" if v.field else v.description for v in violations)
    metadata = {"field": ",".join(fields)} if fields else {}
    return TidingsError(reason.code, reason.name, message, metadata, domain=reason.domain, violations=violations)


def raise_for_fields(problems: Mapping[str, str]) -> None:
    """Raise INVALID_ARGUMENT for ``{field: what is wrong}`` if there is any problem; a use case's input check."""
    if problems:
        raise invalid_fields([FieldViolation(field, description) for field, description in problems.items()])
