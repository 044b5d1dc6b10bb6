"""``GET /v1/ws?token=<access_token>``: the browsers' live connection (API.md, WebSocket section).

A bad or expired token is refused before the upgrade with HTTP 401 and the error body (close code 4401 where the
server cannot send a denial response). Once the route is written the first frame is ``ready``. Clients ping at
least every 30 seconds (any frame counts): a connection silent for ``realtime.idle_timeout_s`` is closed.

Close codes: 1000 the client closed; 1001 the server is stopping (reconnect elsewhere); 1013 the route could not
be written (retry); 4401 the token expired or was revoked (refresh it, reconnect); 4008 slow consumer (too many
frames waiting: reconnect and sync); 4408 idle (no frame within the idle timeout).

No ``from __future__ import annotations``: FastAPI reads the endpoint's signature at import time.
"""

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse

from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.ports import AccountRepo, RealtimeMetrics
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.biz.realtime.session import CloseReason, Session
from tidings.bff.service import ws_codec
from tidings.bff.service.connection import answer, authenticate, refuse
from tidings.pkg import log, trace
from tidings.pkg.errors import TidingsError
from tidings.pkg.errors.http import retry_after, to_http_body

TRANSPORT = "ws"
CLOSE_CODES = {
    CloseReason.CLIENT_CLOSED: (1000, "closed"),
    CloseReason.GOING_AWAY: (1001, "server stopping; reconnect"),
    CloseReason.UNAUTHENTICATED: (4401, "token expired or revoked"),
    CloseReason.SLOW_CONSUMER: (4008, "slow consumer; reconnect and sync"),
    CloseReason.IDLE: (4408, "idle timeout; ping more often"),
    CloseReason.UNROUTABLE: (1013, "try again shortly"),
}
RETRY_LATER = 1013
# A close frame to a client that does not read must not hold the handler.
_CLOSE_TIMEOUT_S = 1.0

_log = log.get("realtime")


def router(
    accounts: AccountRepo,
    hub: Hub,
    frames: Frames,
    metrics: RealtimeMetrics,
    *,
    request_timeout_s: float,
) -> APIRouter:
    """The WebSocket route, bound to the hub and use cases the composition root built."""
    endpoint = Endpoint(accounts, hub, frames, metrics, request_timeout_s=request_timeout_s)
    api = APIRouter()

    @api.websocket("/v1/ws")
    async def connect(websocket: WebSocket, token: str = "") -> None:
        await endpoint.connect(websocket, token)

    return api


class Endpoint:
    """One WebSocket's life: authenticate, register, then read and write beside each other until it closes."""

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

    async def connect(self, websocket: WebSocket, token: str) -> None:
        try:
            identity = await authenticate(self._accounts, token, timeout_s=self._request_timeout_s)
            await self._hub.admit(identity.user_id)
        except TidingsError as error:
            await _deny(websocket, error)
            return
        except Exception:
            _log.error("websocket authentication failed", exc_info=True)
            await _deny(websocket, common_errors.internal("internal error"))
            return
        await websocket.accept()
        try:
            session = await self._hub.connect(identity, token, TRANSPORT)
        except TidingsError:
            await websocket.close(RETRY_LATER, "try again shortly")
            return
        try:
            await self._serve(websocket, session)
        finally:
            self._hub.disconnect(session)

    async def _serve(self, websocket: WebSocket, session: Session) -> None:
        reader = asyncio.create_task(self._read(websocket, session))
        writer = asyncio.create_task(self._write(websocket, session))
        try:
            reason = await session.wait_closed()
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
        if reason is not CloseReason.CLIENT_CLOSED:
            code, text = CLOSE_CODES[reason]
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await websocket.close(code, text)

    async def _read(self, websocket: WebSocket, session: Session) -> None:
        max_bytes = self._hub.conf.max_frame_bytes
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                session.seen(self._hub.clock.monotonic())
                raw = message.get("text")
                raw = message.get("bytes", b"") if raw is None else raw
                try:
                    frame = ws_codec.decode(raw, max_bytes=max_bytes)
                except ws_codec.BadFrame as bad:
                    self._metrics.bad_frame(TRANSPORT)
                    refuse(session, bad.ref, bad.error, transport=TRANSPORT)
                    continue
                await answer(self._frames, session, frame, transport=TRANSPORT, timeout_s=self._request_timeout_s)
        except Exception:
            _log.warning("websocket read failed", exc_info=True)
        session.close(CloseReason.CLIENT_CLOSED)

    async def _write(self, websocket: WebSocket, session: Session) -> None:
        try:
            while (frame := await session.next()) is not None:
                await websocket.send_text(ws_codec.encode(frame))
        except Exception:
            # The client went away mid-write; its reader sees the disconnect too.
            session.close(CloseReason.CLIENT_CLOSED)


async def _deny(websocket: WebSocket, error: TidingsError) -> None:
    """Refuse the upgrade with the error's status and body, or close 4401 / 1013 where that cannot be sent."""
    try:
        body = to_http_body(error, trace.current_trace_id())
        await websocket.send_denial_response(JSONResponse(body, status_code=error.code, headers=retry_after(error)))
    except RuntimeError:
        code = CLOSE_CODES[CloseReason.UNAUTHENTICATED][0] if error.code == 401 else RETRY_LATER
        await websocket.close(code, error.message[:120])
