"""A ``TidingsError`` on the wire: the gRPC status and code table, and the HTTP body."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg import errors
from tidings.pkg.errors import FieldViolation, TidingsError
from tidings.pkg.errors.grpc import from_grpc_error, to_grpc_code, to_grpc_status, to_http_code
from tidings.pkg.errors.http import to_http_body

S = grpc.StatusCode


@dataclass
class FailedCall(grpc.RpcError):  # type: ignore[misc]
    """What a client sees of a failed call, as ``grpc.aio.AioRpcError`` shows it."""

    status: grpc.Status

    def code(self) -> grpc.StatusCode:
        return self.status.code

    def details(self) -> str:
        return str(self.status.details)

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return tuple(self.status.trailing_metadata)


@pytest.mark.parametrize(
    ("code", "grpc_code"),
    [
        (400, S.INVALID_ARGUMENT),
        (401, S.UNAUTHENTICATED),
        (403, S.PERMISSION_DENIED),
        (404, S.NOT_FOUND),
        (409, S.ABORTED),
        (429, S.RESOURCE_EXHAUSTED),
        (499, S.CANCELLED),
        (500, S.INTERNAL),
        (501, S.UNIMPLEMENTED),
        (503, S.UNAVAILABLE),
        (504, S.DEADLINE_EXCEEDED),
    ],
)
def test_codes_map_one_to_one_as_in_kratos(code: int, grpc_code: grpc.StatusCode) -> None:
    assert to_grpc_code(code) == grpc_code
    assert to_http_code(grpc_code) == code


@pytest.mark.parametrize(
    ("grpc_code", "code"),
    [
        (S.ALREADY_EXISTS, 409),
        (S.FAILED_PRECONDITION, 400),
        (S.OUT_OF_RANGE, 400),
        (S.UNKNOWN, 500),
        (S.DATA_LOSS, 500),
    ],
)
def test_the_other_grpc_codes_map_to_the_nearest_http_code(grpc_code: grpc.StatusCode, code: int) -> None:
    assert to_http_code(grpc_code) == code


def test_an_error_survives_status_and_back_with_its_violations() -> None:
    sent = errors.invalid_fields(
        [FieldViolation("member_ids.3", "must be greater than 0"), FieldViolation("title", "required")]
    )
    received = from_grpc_error(FailedCall(to_grpc_status(sent)))
    assert (received.code, received.reason, received.message, received.metadata, received.domain) == (
        sent.code,
        sent.reason,
        sent.message,
        sent.metadata,
        sent.domain,
    )
    assert received.violations == sent.violations


def test_the_status_carries_error_info() -> None:
    status = to_grpc_status(chat_errors.recall_window_passed("too late", window_s="120"))
    assert (status.code, status.details) == (S.ABORTED, "too late")
    metadata = dict(status.trailing_metadata)
    # A service's answer: the caller's channel never retries it.
    assert metadata.pop("grpc-retry-pushback-ms") == "-1"
    [(key, value)] = metadata.items()
    rich = status_pb2.Status.FromString(value)
    info = error_details_pb2.ErrorInfo()
    assert rich.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "RECALL_WINDOW_PASSED",
        "tidings.chat.v1",
        {"window_s": "120"},
    )
    assert key == "grpc-status-details-bin"


def test_a_status_that_contradicts_its_details_is_treated_as_bare() -> None:
    status = rpc_status.to_status(status_pb2.Status(code=S.NOT_FOUND.value[0], message="a"))
    lying = FailedCall(status._replace(code=S.INTERNAL, details="b"))
    error = from_grpc_error(lying)
    assert (error.code, error.reason) == (500, "INTERNAL")


def test_the_http_body_is_the_one_of_the_api() -> None:
    error = TidingsError(404, "CONVERSATION_NOT_FOUND", "no such conversation", {"conversation_id": "42"})
    assert to_http_body(error, "0af7651916cd43dd8448eb211c80319c") == {
        "error": {
            "code": 404,
            "reason": "CONVERSATION_NOT_FOUND",
            "message": "no such conversation",
            "metadata": {"conversation_id": "42"},
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
        }
    }
