"""The two kinds of gRPC listener: an internal one that serves only callers holding its shared secret (health
checks aside), and a public one whose callers' trace context is linked, never continued."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from opentelemetry import trace as otel
from opentelemetry.sdk.trace import TracerProvider

from tidings.api.chat.v1 import chat_pb2, chat_pb2_grpc
from tidings.bench.system import free_port
from tidings.pkg import trace
from tidings.pkg.middleware.grpc import SECRET_METADATA, server_interceptors

SHARED = "internal-listener-secret-0123456789abcdef"
CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01"
VALID = chat_pb2.GetConversationRequest(user_id=1, conversation_id=1)


@dataclass
class Seen(chat_pb2_grpc.ChatServiceServicer):
    """Answers GetConversation and notes the trace each call ran in and the links of its span."""

    trace_ids: list[str] = field(default_factory=list)
    links: list[list[str]] = field(default_factory=list)

    async def GetConversation(
        self, request: chat_pb2.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.GetConversationResponse:
        self.trace_ids.append(trace.current_trace_id())
        span = otel.get_current_span()
        self.links.append([format(link.context.trace_id, "032x") for link in getattr(span, "links", ())])
        return chat_pb2.GetConversationResponse()


@pytest.fixture(autouse=True)
def tracing() -> None:
    if not isinstance(otel.get_tracer_provider(), TracerProvider):
        trace.configure("tidings-test")


@dataclass
class Listener:
    seen: Seen
    channel: grpc.aio.Channel

    @property
    def chat(self) -> chat_pb2_grpc.ChatServiceStub:
        return chat_pb2_grpc.ChatServiceStub(self.channel)


async def serve(interceptors: list[grpc.aio.ServerInterceptor]) -> AsyncIterator[Listener]:
    server = grpc.aio.server(interceptors=interceptors)
    seen = Seen()
    chat_pb2_grpc.add_ChatServiceServicer_to_server(seen, server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Listener(seen, channel)
    await server.stop(None)


@pytest.fixture
async def internal() -> AsyncIterator[Listener]:
    async for listener in serve(server_interceptors(request_timeout_s=5, shared_secret=SHARED)):
        yield listener


@pytest.fixture
async def public() -> AsyncIterator[Listener]:
    async for listener in serve(server_interceptors(request_timeout_s=5, trust_trace_context=False)):
        yield listener


@pytest.fixture
async def trusting() -> AsyncIterator[Listener]:
    async for listener in serve(server_interceptors(request_timeout_s=5)):
        yield listener


@pytest.mark.parametrize("given", [None, "", "not-the-secret", SHARED[:-1], SHARED + "x"])
async def test_an_internal_listener_refuses_calls_without_its_secret(internal: Listener, given: str | None) -> None:
    metadata = () if given is None else ((SECRET_METADATA, given),)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await internal.chat.GetConversation(VALID, metadata=metadata, timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert internal.seen.trace_ids == []


async def test_an_internal_listener_serves_the_secrets_holder_and_anyone_s_health_check(internal: Listener) -> None:
    await internal.chat.GetConversation(VALID, metadata=((SECRET_METADATA, SHARED),), timeout=5)
    assert len(internal.seen.trace_ids) == 1
    health = await health_pb2_grpc.HealthStub(internal.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_public_listener_starts_a_new_trace_linked_to_the_callers(public: Listener) -> None:
    await public.chat.GetConversation(VALID, metadata=(("traceparent", TRACEPARENT),), timeout=5)
    [trace_id] = public.seen.trace_ids
    assert trace_id
    assert trace_id != CALLER_TRACE_ID
    assert public.seen.links == [[CALLER_TRACE_ID]]


async def test_between_our_own_processes_the_callers_trace_continues(trusting: Listener) -> None:
    await trusting.chat.GetConversation(VALID, metadata=(("traceparent", TRACEPARENT),), timeout=5)
    assert trusting.seen.trace_ids == [CALLER_TRACE_ID]
