"""``tidings.gateway.v1.Gateway/Connect``: the native clients' live connection, the gRPC twin of ``GET /v1/ws``.

The token travels in the ``authorization`` metadata (``Bearer <token>``); a bad one fails the call with
UNAUTHENTICATED before anything is sent. Then initial metadata ``x-session-id`` and ``x-server-time``, and the
events and answers as ``ConnectResponse`` frames. The handler is an async generator, as the interceptors need.
Client frames arrive as bytes (``add_to_server``) and are decoded here: bytes that are no ``ConnectRequest`` get an
error frame, as on the WebSocket, instead of ending the stream as grpc's own decoding would.

How a stream ends: the client half-closes or cancels (OK / CANCELLED); the token expires or is revoked
(UNAUTHENTICATED); the client reads too slowly (RESOURCE_EXHAUSTED, reason RATE_LIMITED); it sent nothing within
the idle timeout (DEADLINE_EXCEEDED); the server is stopping (UNAVAILABLE). Clients ping at least every 30 s.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Sequence
from typing import Any, assert_never

import grpc
from google.protobuf.message import DecodeError

from tidings.api.common.v1 import errors as common_errors
from tidings.api.gateway.v1 import gateway_pb2 as pb
from tidings.bff.biz.ports import AccountRepo, RealtimeMetrics
from tidings.bff.biz.realtime.events import (
    Envelope,
    Event,
    Failure,
    Inbound,
    Marked,
    MarkRead,
    Outbound,
    Ping,
    Pong,
    Ready,
    Ref,
    SendText,
    Sent,
    StartTyping,
)
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.biz.realtime.session import CloseReason, Session
from tidings.bff.codec import event_to_pb, message_to_pb
from tidings.bff.service.connection import answer, authenticate, refuse
from tidings.bff.service.schema import rfc3339
from tidings.bff.service.ws_codec import BadFrame
from tidings.pkg import errors, log
from tidings.pkg.errors import FieldViolation, TidingsError
from tidings.pkg.middleware import validation

TRANSPORT = "grpc"
SERVICE = "tidings.gateway.v1.Gateway"
# How long a stream whose session closed may stay stuck writing to a client that does not read.
_STUCK_WRITE_S = 1.0

_log = log.get("realtime")


def close_error(reason: CloseReason) -> TidingsError | None:
    """The status a stream ends with when the server closes it (None: it ends OK)."""
    match reason:
        case CloseReason.CLIENT_CLOSED:
            return None
        case CloseReason.GOING_AWAY:
            return common_errors.unavailable("the server is stopping; reconnect")
        case CloseReason.UNROUTABLE:
            return common_errors.unavailable("cannot register the connection now; retry shortly")
        case CloseReason.UNAUTHENTICATED:
            return common_errors.unauthenticated("the access token expired or was revoked; reconnect with a new one")
        case CloseReason.SLOW_CONSUMER:
            return common_errors.rate_limited("too many events waiting for this stream; reconnect and sync")
        case CloseReason.IDLE:
            return common_errors.deadline_exceeded("nothing received within the idle timeout; ping every 30 s")
        case _:
            assert_never(reason)


def bearer(metadata: Sequence[tuple[str, Any]] | None) -> str:
    """The token of the ``authorization: Bearer <token>`` metadata, or "" (refused as unauthenticated)."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token if scheme.lower() == "bearer" else ""
    return ""


def add_to_server(servicer: GatewayServicer, server: grpc.aio.Server) -> None:
    """Serve ``Gateway/Connect`` with ``servicer``, handing it each client frame as the bytes that came."""
    handlers = {
        "Connect": grpc.stream_stream_rpc_method_handler(
            servicer.Connect, response_serializer=pb.ConnectResponse.SerializeToString
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def decode(raw: bytes, *, max_bytes: int) -> pb.ConnectRequest:
    """The client frame in ``raw``, checked against its contract; ``BadFrame`` (400 naming the field, and the
    frame's ref when it could be read) otherwise."""
    try:
        request = pb.ConnectRequest.FromString(raw)
    except DecodeError:
        raise BadFrame(_invalid_frame("must be one tidings.gateway.v1.ConnectRequest")) from None
    if len(raw) > max_bytes:
        raise BadFrame(_invalid_frame(f"must be at most {max_bytes} bytes"), request.ref)
    try:
        validation.check(request)
    except TidingsError as error:
        raise BadFrame(error, request.ref) from None
    return request


def _invalid_frame(description: str) -> TidingsError:
    return errors.invalid_fields([FieldViolation("frame", description)])


class GatewayServicer:
    """``Gateway/Connect``, registered by ``add_to_server`` (not the generated helper: frames come as bytes)."""

    def __init__(
        self,
        accounts: AccountRepo,
        hub: Hub,
        frames: Frames,
        metrics: RealtimeMetrics,
        *,
        request_timeout_s: float,
    ) -> None:
        self._accounts = accounts
        self._hub = hub
        self._frames = frames
        self._metrics = metrics
        self._request_timeout_s = request_timeout_s

    async def Connect(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConnectResponse]:
        token = bearer(context.invocation_metadata())
        identity = await authenticate(self._accounts, token, timeout_s=self._request_timeout_s)
        await self._hub.admit(identity.user_id)
        session = await self._hub.connect(identity, token, TRANSPORT)
        try:
            server_time = rfc3339(self._hub.clock.wall_ms())
            await context.send_initial_metadata((("x-session-id", session.id), ("x-server-time", server_time)))
            # Frames are read beside the writer, each under its own deadline: not the one the stream began with.
            reader = asyncio.create_task(self._read(request_iterator, session), context=contextvars.Context())
            watchdog = asyncio.create_task(_cancel_if_stuck(session, asyncio.current_task()))
            try:
                while (frame := await session.next()) is not None:
                    response = encode(frame)
                    if response is not None:
                        yield response
            finally:
                for task in (reader, watchdog):
                    task.cancel()
                await asyncio.gather(reader, watchdog, return_exceptions=True)
            error = close_error(session.reason or CloseReason.CLIENT_CLOSED)
            if error is not None:
                raise error
        finally:
            self._hub.disconnect(session)

    async def _read(self, requests: AsyncIterator[bytes], session: Session) -> None:
        max_bytes = self._hub.conf.max_frame_bytes
        try:
            async for raw in requests:
                session.seen(self._hub.clock.monotonic())
                try:
                    frame = inbound(decode(raw, max_bytes=max_bytes))
                except BadFrame as bad:
                    self._metrics.bad_frame(TRANSPORT)
                    refuse(session, bad.ref, bad.error, transport=TRANSPORT)
                    continue
                await answer(self._frames, session, frame, transport=TRANSPORT, timeout_s=self._request_timeout_s)
        except Exception as exc:
            _log.debug("gateway stream read ended", error=repr(exc))
        # The client half-closed or went away: the stream ends with it.
        session.close(CloseReason.CLIENT_CLOSED)


def inbound(request: pb.ConnectRequest) -> Inbound:
    """A validated request as the frame it carries."""
    ref = request.ref
    match request.WhichOneof("frame"):
        case "send":
            send = request.send
            return SendText(send.conversation_id, send.client_msg_id, send.text, ref)
        case "read":
            return MarkRead(request.read.conversation_id, request.read.seq, ref)
        case "typing":
            return StartTyping(request.typing.conversation_id, ref)
        case _:
            return Ping(ref)


def encode(frame: Outbound) -> pb.ConnectResponse | None:
    """A server frame as the stream carries it (None for ``ready``: gRPC has ``x-session-id`` instead)."""
    match frame:
        case Envelope():
            return frame.encoded(TRANSPORT, event_response)
        case Ready():
            return None
        case Pong(ref):
            return pb.ConnectResponse(ref=_ref(ref), pong=pb.Pong())
        case Sent(ref, message, duplicate):
            ack = pb.SendAck(message=message_to_pb(message), duplicate=duplicate)
            return pb.ConnectResponse(ref=_ref(ref), sent=ack)
        case Marked(ref, conversation_id, read_seq):
            marked = pb.ReadAck(conversation_id=conversation_id, read_seq=read_seq)
            return pb.ConnectResponse(ref=_ref(ref), marked=marked)
        case Failure(ref, error, trace_id):
            failure = pb.ErrorFrame(
                code=error.code,
                reason=error.reason,
                message=error.message,
                metadata=error.metadata,
                trace_id=trace_id,
            )
            return pb.ConnectResponse(ref=_ref(ref), error=failure)
        case _:
            assert_never(frame)


def event_response(event: Event) -> pb.ConnectResponse:
    return pb.ConnectResponse(event=event_to_pb(event))


def _ref(ref: Ref) -> int:
    return ref if isinstance(ref, int) else 0


async def _cancel_if_stuck(session: Session, handler: asyncio.Task[Any] | None) -> None:
    """A closed session's stream may be stuck handing a frame to a client that does not read: end it."""
    await session.wait_closed()
    await asyncio.sleep(_STUCK_WRITE_S)
    if handler is not None:
        handler.cancel()
