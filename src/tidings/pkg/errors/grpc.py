"""``TidingsError`` on gRPC: a status whose code follows the Kratos table and whose details carry
``google.rpc.ErrorInfo{reason, domain, metadata}`` (and ``google.rpc.BadRequest`` for invalid input)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from tidings.pkg.errors import reason_for_code
from tidings.pkg.errors.base import FieldViolation, TidingsError

_S = grpc.StatusCode
# HTTP-like code -> gRPC code, and back (Kratos' httpstatus.ToGRPCCode / FromGRPCCode).
_TO_GRPC = {
    400: _S.INVALID_ARGUMENT,
    401: _S.UNAUTHENTICATED,
    403: _S.PERMISSION_DENIED,
    404: _S.NOT_FOUND,
    409: _S.ABORTED,
    429: _S.RESOURCE_EXHAUSTED,
    499: _S.CANCELLED,
    500: _S.INTERNAL,
    501: _S.UNIMPLEMENTED,
    503: _S.UNAVAILABLE,
    504: _S.DEADLINE_EXCEEDED,
}
_TO_HTTP = {
    **{grpc_code: code for code, grpc_code in _TO_GRPC.items()},
    _S.OK: 200,
    _S.UNKNOWN: 500,
    _S.ALREADY_EXISTS: 409,
    _S.FAILED_PRECONDITION: 400,
    _S.OUT_OF_RANGE: 400,
    _S.DATA_LOSS: 500,
}


def to_grpc_code(code: int) -> grpc.StatusCode:
    return _TO_GRPC.get(code, _S.UNKNOWN)


def to_http_code(code: grpc.StatusCode) -> int:
    return _TO_HTTP.get(code, 500)


def to_grpc_status(error: TidingsError) -> grpc.Status:
    """The status a server aborts with (``await context.abort_with_status(...)``)."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=error.domain, metadata=error.metadata))]
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    status = status_pb2.Status(code=to_grpc_code(error.code).value[0], message=error.message, details=details)
    base = rpc_status.to_status(status)
    return _Status(base.code, base.details, (*base.trailing_metadata, _NO_RETRY))


# An answer is never retried by the caller's channel (gRFC A6: a negative pushback stops its retry policy): only a
# call that found no instance to take it is (``tidings.pkg.transport.grpc``). A service's own UNAVAILABLE (the search
# index down, say) is an answer: retrying it would only make the caller wait longer for the same one.
_NO_RETRY = ("grpc-retry-pushback-ms", "-1")


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):  # type: ignore[misc]
    pass


def from_grpc_error(error: grpc.RpcError) -> TidingsError:
    """The ``TidingsError`` a downstream server raised, from the failed call (a ``grpc.aio.AioRpcError``).

    A status without ErrorInfo (the channel failed, a deadline passed, a server that is not ours) gets the shared
    reason of its code and a message that names only the status, since its text may describe our network.
    """
    code = to_http_code(error.code())
    info = error_details_pb2.ErrorInfo()
    violations: list[FieldViolation] = []
    for detail in _details(error):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations += [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
    if not info.reason:
        generic = reason_for_code(code)
        message = f"downstream call failed: {error.code().name}"
        return TidingsError(code, generic.name, message, cause=error, domain=generic.domain)
    return TidingsError(
        code,
        info.reason,
        error.details() or "",
        dict(info.metadata),
        cause=error,
        domain=info.domain,
        violations=violations,
    )


def _details(error: grpc.RpcError) -> list[any_pb2.Any]:
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # the rich status contradicts the call's own code or message: trust neither detail
        return []
    return list(status.details) if status is not None else []


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


class ErrorMessage(Protocol):
    """The fields of ``tidings.errors.v1.Error`` (and of ``tidings.chat.v1.SendError``, its older twin)."""

    code: int
    reason: str
    domain: str
    message: str

    @property
    def metadata(self) -> Mapping[str, str]: ...

    @property
    def violations(self) -> Iterable[_Violation]: ...


class _Violation(Protocol):
    field: str
    description: str


M = TypeVar("M", bound=Message)


def error_to_pb(error: TidingsError, message_type: type[M]) -> M:
    """``error`` as one item's outcome in a batched call's answer: a ``tidings.errors.v1.Error`` (or a message
    with its fields)."""
    build: Callable[..., M] = message_type  # generated messages take their fields as keywords
    return build(
        code=error.code,
        reason=error.reason,
        domain=error.domain,
        message=error.message,
        metadata=error.metadata,
        violations=[{"field": v.field, "description": v.description} for v in error.violations],
    )


def error_from_pb(error: ErrorMessage) -> TidingsError:
    """The ``TidingsError`` one item of a batched call failed with (``error_to_pb``'s inverse)."""
    return TidingsError(
        error.code,
        error.reason,
        error.message,
        dict(error.metadata),
        domain=error.domain,
        violations=[FieldViolation(v.field, v.description) for v in error.violations],
    )
