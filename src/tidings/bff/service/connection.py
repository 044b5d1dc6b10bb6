"""One live connection's life, whatever carries its frames: the WebSocket (JSON) and the gRPC stream (protobuf).

A transport brings its ``Codec`` and what is truly its own: the handshake, reading and writing one frame, and how
a close is told (a close code, a status). The rest is here: authenticating and admitting the connection,
registering it with the hub, serving each client frame, and handing the transport the server's frames in order.

A connection outlives any request deadline, so its frames are read in a context of their own, and each gets its
own span (its own trace id, quoted in an error frame) and its own deadline (the module's request timeout), passed
on to the calls it makes.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Identity
from tidings.bff.biz.ports import AccountRepo, RealtimeMetrics
from tidings.bff.biz.realtime.events import Failure, Inbound, Outbound, Ref
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.biz.realtime.session import CloseReason, Session
from tidings.pkg import log, trace
from tidings.pkg.errors import TidingsError
from tidings.pkg.middleware import deadline

RawT = TypeVar("RawT")
WireT = TypeVar("WireT")

_log = log.get("realtime")


class BadFrame(Exception):
    """A client frame that cannot be read; ``error`` is the 400 to answer with, ``ref`` the frame's if it had one."""

    def __init__(self, error: TidingsError, ref: Ref = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.ref = ref


@dataclass(frozen=True)
class Codec(Generic[RawT, WireT]):
    """How one transport carries frames: ``decode(raw, max_bytes)`` reads a client frame (``BadFrame`` if it
    cannot), ``encode`` writes a server frame (None for one the transport does not send)."""

    transport: str
    decode: Callable[[RawT, int], Inbound]
    encode: Callable[[Outbound], WireT | None]


class Connections:
    """Live connections on any transport, served by the hub and the frame use cases the composition root built."""

    def __init__(
        self,
        accounts: AccountRepo,
        hub: Hub,
        frames: Frames,
        metrics: RealtimeMetrics,
        *,
        request_timeout_s: float,
        max_frame_bytes: int,
    ) -> None:
        self._accounts = accounts
        self._hub = hub
        self._frames = frames
        self._metrics = metrics
        self._request_timeout_s = request_timeout_s
        self._max_frame_bytes = max_frame_bytes

    def server_time_ms(self) -> int:
        return self._hub.clock.now_ms()

    async def admit(self, token: str) -> Identity:
        """The identity behind ``token``, if its user may open one more connection (401, 429 or 503 otherwise)."""
        identity = await authenticate(self._accounts, token, timeout_s=self._request_timeout_s)
        await self._hub.admit(identity.user_id)
        return identity

    async def open(self, identity: Identity, token: str, transport: str) -> Session:
        """Register the connection here and in the route table (503 if the route cannot be written)."""
        return await self._hub.connect(identity, token, transport)

    def close(self, session: Session) -> None:
        self._hub.disconnect(session)

    @asynccontextmanager
    async def serving(
        self, session: Session, received: AsyncIterator[RawT], codec: Codec[RawT, WireT]
    ) -> AsyncIterator[AsyncIterator[WireT]]:
        """Serve the client's ``received`` frames beside the block, which writes the frames it is given, in order,
        until the session closes; the client stopping sending closes the session (``CLIENT_CLOSED``)."""
        reader = asyncio.create_task(self._read(session, received, codec), context=contextvars.Context())
        try:
            yield _outgoing(session, codec)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, session: Session, received: AsyncIterator[RawT], codec: Codec[RawT, WireT]) -> None:
        transport = codec.transport
        try:
            async for raw in received:
                session.seen(self._hub.clock.monotonic())
                try:
                    frame = codec.decode(raw, self._max_frame_bytes)
                except BadFrame as bad:
                    self._metrics.bad_frame(transport)
                    refuse(session, bad.ref, bad.error, transport=transport)
                    continue
                await answer(self._frames, session, frame, transport=transport, timeout_s=self._request_timeout_s)
        except Exception as exc:
            _log.debug("connection read ended", transport=transport, error=repr(exc))
        session.close(CloseReason.CLIENT_CLOSED)


async def _outgoing(session: Session, codec: Codec[RawT, WireT]) -> AsyncIterator[WireT]:
    while (frame := await session.next()) is not None:
        encoded = codec.encode(frame)
        if encoded is not None:
            yield encoded


async def authenticate(accounts: AccountRepo, token: str, *, timeout_s: float) -> Identity:
    """The identity behind ``token`` (401 for a missing, forged, expired or revoked one), under ``timeout_s``."""
    token = token.strip()
    if not token or len(token) > 4096:
        raise common_errors.unauthenticated("send a valid access token")
    with deadline.scope(timeout_s):
        try:
            async with asyncio.timeout(timeout_s):
                return await accounts.identify(token)
        except TimeoutError:
            raise common_errors.unavailable("cannot verify the token now; retry shortly") from None


async def answer(frames: Frames, session: Session, frame: Inbound, *, transport: str, timeout_s: float) -> None:
    """Serve one client frame and queue its answer, or the error frame that says why it failed."""
    with trace.server_span(f"{transport} {type(frame).__name__}", {}):
        try:
            with deadline.scope(timeout_s):
                async with asyncio.timeout(timeout_s):
                    reply = await frames.answer(session, frame)
        except TidingsError as error:
            reply = Failure(frame.ref, error, trace.current_trace_id())
        except TimeoutError:
            late = common_errors.deadline_exceeded("the frame was not served in time")
            reply = Failure(frame.ref, late, trace.current_trace_id())
        except Exception:
            _log.error("unhandled error serving a frame", exc_info=True, frame=type(frame).__name__)
            reply = Failure(frame.ref, common_errors.internal("internal error"), trace.current_trace_id())
    if reply is not None:
        session.offer(reply)


def refuse(session: Session, ref: Ref, error: TidingsError, *, transport: str) -> None:
    """Answer a frame that could not be read (400) with an error frame; the connection stays open."""
    with trace.server_span(f"{transport} bad frame", {}):
        session.offer(Failure(ref, error, trace.current_trace_id()))
