"""``tidings.gateway.v1.Gateway/Connect``: the native clients' live connection, the gRPC twin of ``GET /v1/ws``.

The token travels in the ``authorization`` metadata (``Bearer <token>``); a bad one fails the call with
UNAUTHENTICATED before anything is sent. Then initial metadata ``x-session-id`` and ``x-server-time``, and the
events and answers as ``ConnectResponse`` frames. The handler is an async generator, as the interceptors need.
Client frames arrive as bytes (``add_to_server``), decoded by ``gateway_codec``.

How a stream ends: the client half-closes or cancels (OK / CANCELLED); the token expires or is revoked
(UNAUTHENTICATED); the user's tokens are revoked or the user banned (a ``session_ended`` event, then UNAUTHENTICATED
TOKEN_REVOKED or PERMISSION_DENIED USER_BANNED); the client reads too slowly (RESOURCE_EXHAUSTED, reason
RATE_LIMITED); it sent nothing within the idle timeout (DEADLINE_EXCEEDED); the server is stopping (UNAVAILABLE).
Clients ping at least every 30 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc

from tidings.api.account.v1 import errors as account_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.api.gateway.v1 import gateway_pb2 as pb
from tidings.bff.biz.realtime.session import CloseReason, Session
from tidings.bff.service import gateway_codec
from tidings.bff.service.connection import Connections
from tidings.pkg.edge import rfc3339
from tidings.pkg.errors import TidingsError

SERVICE = "tidings.gateway.v1.Gateway"
# How long a stream whose session closed may stay stuck writing to a client that does not read.
_STUCK_WRITE_S = 1.0


# The status a stream ends with when the server closes it, by why (a client's close ends it OK).
_CLOSE_ERRORS: dict[CloseReason, tuple[Callable[..., TidingsError], str]] = {
    CloseReason.GOING_AWAY: (common_errors.unavailable, "the server is stopping; reconnect"),
    CloseReason.UNROUTABLE: (common_errors.unavailable, "cannot register the connection now; retry shortly"),
    CloseReason.UNAUTHENTICATED: (
        common_errors.unauthenticated,
        "the access token expired or was revoked; reconnect with a new one",
    ),
    CloseReason.REVOKED: (account_errors.token_revoked, "every token of this user was revoked; sign in again"),
    CloseReason.BANNED: (account_errors.user_banned, "this account is suspended"),
    CloseReason.SLOW_CONSUMER: (
        common_errors.rate_limited,
        "too many events waiting for this stream; reconnect and sync",
    ),
    CloseReason.IDLE: (common_errors.deadline_exceeded, "nothing received within the idle timeout; ping every 30 s"),
}


def close_error(reason: CloseReason) -> TidingsError | None:
    """The status a stream ends with when the server closes it (None: it ends OK)."""
    if reason is CloseReason.CLIENT_CLOSED:
        return None
    make, message = _CLOSE_ERRORS[reason]
    return make(message)


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


class GatewayServicer:
    """``Gateway/Connect``, registered by ``add_to_server`` (not the generated helper: frames come as bytes)."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def Connect(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConnectResponse]:
        token = bearer(context.invocation_metadata())
        identity = await self._connections.admit(token)
        session = await self._connections.open(identity, token, gateway_codec.TRANSPORT)
        try:
            server_time = rfc3339(self._connections.server_time_ms())
            await context.send_initial_metadata((("x-session-id", session.id), ("x-server-time", server_time)))
            watchdog = asyncio.create_task(_cancel_if_stuck(session, asyncio.current_task()))
            try:
                async with self._connections.serving(session, request_iterator, gateway_codec.CODEC) as outgoing:
                    async for response in outgoing:
                        yield response
            finally:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            error = close_error(session.reason or CloseReason.CLIENT_CLOSED)
            if error is not None:
                raise error
        finally:
            self._connections.close(session)


async def _cancel_if_stuck(session: Session, handler: asyncio.Task[Any] | None) -> None:
    """A closed session's stream may be stuck handing a frame to a client that does not read: end it."""
    await session.wait_closed()
    await asyncio.sleep(_STUCK_WRITE_S)
    if handler is not None:
        handler.cancel()
