"""The gRPC middleware against real in-process servers: errors, validation, recovery, deadlines, streams."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_status import rpc_status
from opentelemetry import trace as otel

from tests.unit.pkg.middleware.conftest import BARE, EXPLODE, REASONS, REQUEST_TIMEOUT_S, SECRET, Stack, raised
from tidings.api.chat.v1 import chat_pb2
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.gateway.v1 import gateway_pb2
from tidings.pkg import log
from tidings.pkg.errors import FieldViolation, Reason, TidingsError
from tidings.pkg.middleware import deadline
from tidings.pkg.middleware.grpc import client_interceptors, server_interceptors

GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def get(number: int) -> chat_pb2.GetConversationRequest:
    return chat_pb2.GetConversationRequest(user_id=1, conversation_id=number)


def assert_same(error: TidingsError, expected: TidingsError) -> None:
    assert (error.code, error.reason, error.message, error.metadata, error.domain) == (
        expected.code,
        expected.reason,
        expected.message,
        expected.metadata,
        expected.domain,
    )


@pytest.mark.parametrize("reason", REASONS, ids=lambda reason: reason.name)
async def test_every_reason_comes_back_as_the_same_error(stack: Stack, reason: Reason) -> None:
    with pytest.raises(TidingsError) as caught:
        await stack.chat.GetConversation(get(REASONS.index(reason) + 1))
    assert_same(caught.value, raised(reason))


@pytest.mark.parametrize("reason", REASONS, ids=lambda reason: reason.name)
async def test_every_reason_travels_as_its_grpc_code_with_error_info(stack: Stack, reason: Reason) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.raw_chat.GetConversation(get(REASONS.index(reason) + 1))
    assert caught.value.code() == GRPC_CODES[reason.code]
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (reason.name, reason.domain, raised(reason).metadata)


async def test_an_error_keeps_reason_message_and_metadata_over_two_hops(stack: Stack) -> None:
    reason = chat_errors.CONVERSATION_NOT_FOUND
    with pytest.raises(TidingsError) as caught:
        await stack.chat.ListMessages(
            chat_pb2.ListMessagesRequest(user_id=1, conversation_id=REASONS.index(reason) + 1)
        )
    assert_same(caught.value, raised(reason))
    assert chat_errors.is_conversation_not_found(caught.value)


async def test_invalid_input_names_every_bad_field(stack: Stack) -> None:
    bad = chat_pb2.SendMessageRequest(conversation_id=0, sender_id=7, client_msg_id="has space", text="")
    with pytest.raises(TidingsError) as caught:
        await stack.chat.SendMessage(bad)
    error = caught.value
    assert (error.code, error.reason) == (400, "INVALID_ARGUMENT")
    assert error.metadata == {"field": "conversation_id,client_msg_id,text"}
    assert [violation.field for violation in error.violations] == ["conversation_id", "client_msg_id", "text"]
    assert "text: must be at least 1 characters" in error.message


async def test_nested_and_repeated_fields_are_named_by_dotted_path(stack: Stack) -> None:
    with pytest.raises(TidingsError) as caught:
        await stack.chat.GetConversationStates(
            chat_pb2.GetConversationStatesRequest(user_id=1, conversation_ids=[5, 6, 7, -8])
        )
    assert caught.value.metadata == {"field": "conversation_ids.3"}
    assert caught.value.violations == (FieldViolation("conversation_ids.3", "must be greater than 0"),)


async def test_field_violations_travel_as_bad_request(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.raw_chat.SendMessage(
            chat_pb2.SendMessageRequest(conversation_id=1, sender_id=7, client_msg_id="a b", text="hi")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad_request)
    assert [violation.field for violation in bad_request.field_violations] == ["client_msg_id"]


async def test_a_rule_whose_id_is_a_reason_raises_that_reason(stack: Stack) -> None:
    long = chat_pb2.SendMessageRequest(conversation_id=1, sender_id=7, client_msg_id="m-1", text="a" * 4001)
    with pytest.raises(TidingsError) as caught:
        await stack.chat.SendMessage(long)
    assert (caught.value.code, caught.value.reason) == (400, "MESSAGE_TOO_LONG")
    assert caught.value.metadata == {"field": "text"}


async def test_message_length_counts_code_points_not_bytes(stack: Stack) -> None:
    text = "é" * 4000  # 8,000 bytes of UTF-8
    response = await stack.chat.SendMessage(
        chat_pb2.SendMessageRequest(conversation_id=1, sender_id=7, client_msg_id="m-1", text=text)
    )
    assert response.message.text == text


async def test_an_unexpected_exception_is_internal_with_a_trace_id_and_no_internals(stack: Stack) -> None:
    stream = io.StringIO()
    log.configure(service_name="tidings-test", service_version="0", stream=stream)
    with pytest.raises(TidingsError) as caught:
        await stack.chat.GetConversation(get(EXPLODE))
    error = caught.value
    assert (error.code, error.reason, error.message) == (500, "INTERNAL", "internal error")
    trace_id = error.metadata["trace_id"]
    assert len(trace_id) == 32
    assert int(trace_id, 16) != 0
    assert "hunter2" not in repr(error)
    assert "hunter2" not in str(caught.value.cause)
    [line] = [line for line in map(json.loads, stream.getvalue().splitlines()) if line["log.level"] == "error"]
    assert line["trace"]["id"] == trace_id  # the log line that holds the stack is found by the trace id
    assert "RuntimeError: password=hunter2" in line["error"]["stack_trace"]


async def test_the_trace_continues_from_the_caller(stack: Stack) -> None:
    with otel.get_tracer("test").start_as_current_span("client") as span, pytest.raises(TidingsError) as caught:
        await stack.chat.GetConversation(get(EXPLODE))
    assert caught.value.metadata["trace_id"] == format(span.get_span_context().trace_id, "032x")


async def test_a_status_without_error_info_gets_the_reason_of_its_code_and_no_text(stack: Stack) -> None:
    with pytest.raises(TidingsError) as caught:
        await stack.chat.GetConversation(get(BARE))
    error = caught.value
    assert (error.code, error.reason, error.domain) == (503, "UNAVAILABLE", "tidings.common.v1")
    assert SECRET not in error.message
    assert isinstance(error.cause, grpc.aio.AioRpcError)


async def test_a_handler_and_its_downstream_call_run_under_the_callers_deadline(stack: Stack) -> None:
    # gRPC rounds a timeout up a little on the wire (2.0 s may arrive as 2.009 s): hence the slack.
    slack = 0.05
    stack.hop1.pause_s = 0.5
    await stack.chat.GetConversationStates(chat_pb2.GetConversationStatesRequest(user_id=1), timeout=2.0)
    [hop1_left] = stack.hop1.time_remaining
    [hop1_deadline] = stack.hop1.deadline_left
    [hop2_left] = stack.hop2.time_remaining
    assert hop1_left is not None
    assert hop1_deadline is not None
    assert hop2_left is not None
    assert 0 < hop1_left < 2.0 + slack
    assert hop1_deadline == pytest.approx(hop1_left, abs=0.01)  # the middleware's deadline is the call's
    # Hop 2 gets what hop 1 had left when it called, after its pause: not the 2 s, nor the 5 s default.
    assert 0 < hop2_left < hop1_left - 0.5 + slack


async def test_a_call_without_a_deadline_gets_the_request_timeout(stack: Stack) -> None:
    await stack.chat.GetConversationStates(chat_pb2.GetConversationStatesRequest(user_id=1))
    [hop1_left] = stack.hop1.time_remaining
    [hop1_deadline] = stack.hop1.deadline_left
    [hop2_left] = stack.hop2.time_remaining
    assert hop1_left is None
    assert hop1_deadline is not None
    assert hop2_left is not None
    assert 0 < hop1_deadline <= REQUEST_TIMEOUT_S
    assert 0 < hop2_left < REQUEST_TIMEOUT_S + 0.05


async def test_a_call_after_the_deadline_fails_at_once(stack: Stack) -> None:
    with deadline.scope(0), pytest.raises(TidingsError) as caught:
        await stack.chat.GetConversationStates(chat_pb2.GetConversationStatesRequest(user_id=1))
    assert (caught.value.code, caught.value.reason) == (504, "DEADLINE_EXCEEDED")
    assert stack.hop1.time_remaining == []


async def test_a_streaming_handler_answers_and_its_error_comes_back_as_the_same_error(stack: Stack) -> None:
    frames = [
        gateway_pb2.ConnectRequest(ref=1, ping=gateway_pb2.PingFrame()),
        gateway_pb2.ConnectRequest(ref=2, send=gateway_pb2.SendFrame(conversation_id=42, text="hi")),
    ]

    async def requests() -> AsyncIterator[gateway_pb2.ConnectRequest]:
        for frame in frames:
            yield frame

    received: list[gateway_pb2.ConnectResponse] = []

    async def converse() -> None:
        async for response in stack.gateway.Connect(requests()):
            received.append(response)

    with pytest.raises(TidingsError) as caught:
        await converse()
    assert [response.ref for response in received] == [1]
    assert received[0].HasField("pong")
    assert (caught.value.code, caught.value.reason, caught.value.metadata) == (
        403,
        "NOT_A_MEMBER",
        {"conversation_id": "42"},
    )


async def test_a_handler_that_writes_its_stream_works_too() -> None:
    """grpc_health's Watch writes with ``await context.write``; every server of ours carries the health service."""
    health = HealthServicer()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    server = grpc.aio.server(interceptors=server_interceptors(request_timeout_s=REQUEST_TIMEOUT_S))
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=client_interceptors()) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
            first = await anext(aiter(watch))
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            checked = await stub.Check(health_pb2.HealthCheckRequest(service=""))
            assert checked.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(grace=None)
