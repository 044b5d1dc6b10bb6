"""In-process gRPC servers behind our middleware: a test ChatService in two hops (hop 1 calls hop 2) and a Gateway.

The test ChatService fails on request: ``GetConversation(conversation_id=n)`` raises the n-th of every error
reason, ``EXPLODE`` raises an unexpected exception, ``DATABASE_DOWN`` the driver's error for an unreachable
database, and ``BARE`` aborts with a bare status, as a server that is not ours would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from sqlalchemy.exc import OperationalError

from tidings.api.account.v1 import errors as account_errors
from tidings.api.chat.v1 import chat_pb2, chat_pb2_grpc
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from tidings.pkg import errors, trace
from tidings.pkg.errors import Reason
from tidings.pkg.middleware import deadline
from tidings.pkg.middleware.grpc import client_interceptors, server_interceptors

REASONS: list[Reason] = [*account_errors.REASONS, *chat_errors.REASONS, *common_errors.REASONS]
EXPLODE = 9000
BARE = 9001
DATABASE_DOWN = 9002
SECRET = "password=hunter2 on db 10.1.2.3"
REQUEST_TIMEOUT_S = 5.0


def conversation_id(reason: Reason) -> int:
    """The id whose GetConversation raises ``reason``."""
    return REASONS.index(reason) + 1


def raised(reason: Reason) -> errors.TidingsError:
    """What the test ChatService raises for ``reason``: a message and metadata worth checking, non-ASCII included."""
    return reason.error(f"{reason.name.lower()} — ünïcode", conversation_id=str(conversation_id(reason)), hint="ä b")


@dataclass
class Chat(chat_pb2_grpc.ChatServiceServicer):
    """The test servicer; with a ``downstream`` stub it is hop 1 and passes some calls on to hop 2."""

    downstream: chat_pb2_grpc.ChatServiceAsyncStub | None = None
    # How long GetConversationStates works before it calls downstream.
    pause_s: float = 0.0
    # What GetConversationStates saw: the gRPC deadline left, and our middleware's deadline left.
    time_remaining: list[float | None] = field(default_factory=list)
    deadline_left: list[float | None] = field(default_factory=list)

    async def GetConversation(
        self, request: chat_pb2.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.GetConversationResponse:
        number = request.conversation_id
        if number <= len(REASONS):
            raise raised(REASONS[number - 1])
        if number == EXPLODE:
            raise RuntimeError(SECRET)
        if number == DATABASE_DOWN:
            raise OperationalError("SELECT", {}, ConnectionRefusedError(SECRET))
        if number == BARE:
            await context.abort(grpc.StatusCode.UNAVAILABLE, SECRET)
        return chat_pb2.GetConversationResponse(conversation=chat_pb2.Conversation(id=number, title="found"))

    async def ListMessages(
        self, request: chat_pb2.ListMessagesRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.ListMessagesResponse:
        assert self.downstream is not None
        asked = chat_pb2.GetConversationRequest(user_id=request.user_id, conversation_id=request.conversation_id)
        await self.downstream.GetConversation(asked)
        return chat_pb2.ListMessagesResponse()

    async def SendMessage(
        self, request: chat_pb2.SendMessageRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.SendMessageResponse:
        message = chat_pb2.Message(
            id=1, conversation_id=request.conversation_id, seq=1, sender_id=request.sender_id, text=request.text
        )
        return chat_pb2.SendMessageResponse(message=message)

    async def GetConversationStates(
        self, request: chat_pb2.GetConversationStatesRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.GetConversationStatesResponse:
        self.time_remaining.append(context.time_remaining())
        self.deadline_left.append(deadline.remaining())
        await asyncio.sleep(self.pause_s)
        if self.downstream is not None:
            await self.downstream.GetConversationStates(request)
        return chat_pb2.GetConversationStatesResponse()


class Gateway(gateway_pb2_grpc.GatewayServicer):
    """A bidirectional stream: pings are answered, a send fails the stream with a ``TidingsError``."""

    async def Connect(
        self, request_iterator: AsyncIterator[gateway_pb2.ConnectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_pb2.ConnectResponse]:
        async for frame in request_iterator:
            if frame.HasField("ping"):
                yield gateway_pb2.ConnectResponse(ref=frame.ref, pong=gateway_pb2.Pong())
            else:
                raise chat_errors.not_a_member("not a member", conversation_id=str(frame.send.conversation_id))


@dataclass
class Stack:
    hop1: Chat
    hop2: Chat
    # Clients of hop 1: through our client middleware, and without it (to see the raw status).
    chat: chat_pb2_grpc.ChatServiceAsyncStub
    raw_chat: chat_pb2_grpc.ChatServiceAsyncStub
    gateway: gateway_pb2_grpc.GatewayAsyncStub


async def _serve(*servicers: object) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=server_interceptors(request_timeout_s=REQUEST_TIMEOUT_S))
    for servicer in servicers:
        if isinstance(servicer, Chat):
            chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, server)
        else:
            gateway_pb2_grpc.add_GatewayServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture(scope="session", autouse=True)
def tracing() -> None:
    """A real TracerProvider, as ``tidings serve`` installs: every request gets a real trace id."""
    trace.configure("tidings-test")


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    hop2 = Chat()
    server2, address2 = await _serve(hop2)
    to_hop2 = grpc.aio.insecure_channel(address2, interceptors=client_interceptors())
    hop1 = Chat(downstream=chat_pb2_grpc.ChatServiceStub(to_hop2))
    server1, address1 = await _serve(hop1, Gateway())
    to_hop1 = grpc.aio.insecure_channel(address1, interceptors=client_interceptors())
    raw_to_hop1 = grpc.aio.insecure_channel(address1)
    try:
        yield Stack(
            hop1=hop1,
            hop2=hop2,
            chat=chat_pb2_grpc.ChatServiceStub(to_hop1),
            raw_chat=chat_pb2_grpc.ChatServiceStub(raw_to_hop1),
            gateway=gateway_pb2_grpc.GatewayStub(to_hop1),
        )
    finally:
        for channel in (to_hop1, raw_to_hop1, to_hop2):
            await channel.close()
        await server1.stop(grace=None)
        await server2.stop(grace=None)
