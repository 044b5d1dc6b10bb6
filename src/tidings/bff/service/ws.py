"""``GET /v1/ws?token=<access_token>``: the browsers' live connection (API.md, WebSocket section).

A bad or expired token is refused before the upgrade with HTTP 401 and the error body (close code 4401 where the
server cannot send a denial response). Once the route is written the first frame is ``ready``. Clients ping at
least every 30 seconds (any frame counts): a connection silent for ``realtime.idle_timeout_s`` is closed.

Close codes: 1000 the client closed; 1001 the server is stopping (reconnect elsewhere); 1013 the route could not
be written (retry); 4401 the token expired or was revoked (refresh it, reconnect); 4008 slow consumer (too many
frames waiting: reconnect and sync); 4408 idle (no frame within the idle timeout); 4403 the user was banned (do not
reconnect). A close the server decides on the user's account (4403, or 4401 after a revocation: logged out
everywhere, password reset) follows a ``session.ended`` frame that says why.

No ``from __future__ import annotations``: FastAPI reads the endpoint's signature at import time.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse

from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.realtime.session import CloseReason, Session
from tidings.bff.service import ws_codec
from tidings.bff.service.connection import Connections
from tidings.pkg import log, trace
from tidings.pkg.errors import TidingsError
from tidings.pkg.errors.http import retry_after, to_http_body

CLOSE_CODES = {
    CloseReason.CLIENT_CLOSED: (1000, "closed"),
    CloseReason.GOING_AWAY: (1001, "server stopping; reconnect"),
    CloseReason.UNAUTHENTICATED: (4401, "token expired or revoked"),
    CloseReason.SLOW_CONSUMER: (4008, "slow consumer; reconnect and sync"),
    CloseReason.IDLE: (4408, "idle timeout; ping more often"),
    CloseReason.UNROUTABLE: (1013, "try again shortly"),
    CloseReason.REVOKED: (4401, "token revoked; sign in again"),
    CloseReason.BANNED: (4403, "account suspended"),
}
RETRY_LATER = 1013
# A close frame to a client that does not read must not hold the handler.
_CLOSE_TIMEOUT_S = 1.0

_log = log.get("realtime")


def router(connections: Connections) -> APIRouter:
    """The WebSocket route, serving its connections with the hub and use cases the composition root built."""
    api = APIRouter()

    @api.websocket("/v1/ws")
    async def connect(websocket: WebSocket, token: str = "") -> None:
        await serve(connections, websocket, token)

    return api


async def serve(connections: Connections, websocket: WebSocket, token: str) -> None:
    """One WebSocket's life: authenticated before the upgrade, then read and written beside each other until it
    closes, with the close code that says why."""
    try:
        identity = await connections.admit(token)
    except TidingsError as error:
        await _deny(websocket, error)
        return
    except Exception:
        _log.error("websocket authentication failed", exc_info=True)
        await _deny(websocket, common_errors.internal("internal error"))
        return
    await websocket.accept()
    try:
        session = await connections.open(identity, token, ws_codec.TRANSPORT)
    except TidingsError:
        await websocket.close(RETRY_LATER, "try again shortly")
        return
    try:
        async with connections.serving(session, _received(websocket), ws_codec.CODEC) as outgoing:
            writer = asyncio.create_task(_write(websocket, session, outgoing))
            try:
                reason = await session.wait_closed()
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
        if reason is not CloseReason.CLIENT_CLOSED:
            code, text = CLOSE_CODES[reason]
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await websocket.close(code, text)
    finally:
        connections.close(session)


async def _received(websocket: WebSocket) -> AsyncIterator[str | bytes]:
    """The client's frames, text or binary, until it disconnects."""
    while (message := await websocket.receive())["type"] != "websocket.disconnect":
        text = message.get("text")
        yield message.get("bytes", b"") if text is None else text


async def _write(websocket: WebSocket, session: Session, outgoing: AsyncIterator[str]) -> None:
    try:
        async for text in outgoing:
            await websocket.send_text(text)
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
