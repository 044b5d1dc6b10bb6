"""Slow and greedy clients on a public HTTP port: read timeouts for a request's headers and body, and a cap on the
connections one client address holds at once.

uvicorn bounds only the idle time *between* requests on a keep-alive connection (``timeout_keep_alive``); nothing
in uvicorn, httptools or h11 bounds a connection that never sends a request, headers trickled a line at a time, or
a body sent a byte at a time, and ``limit_concurrency`` caps the whole server rather than one client. So this file
adds what is missing to uvicorn's own httptools protocol, through its parser callbacks:

- from the moment a connection is made (or a request's first byte arrives) its headers must be complete within
  ``header_timeout_s``: otherwise it is answered 408 (closed silently if it sent nothing at all);
- from then, its body must be complete within ``body_timeout_s``: otherwise the connection is closed (the app
  sees the client disconnect);
- a client address holding ``max_per_client`` connections has any further one closed at once. A WebSocket keeps
  its place while it is open (its own idle timeout is the session's).

A request the parser cannot read at all is answered with the API's error body (400, ``metadata.field`` =
``request``) rather than uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# uvicorn answers a request it cannot parse with plain text; clients of the API expect its error body.
_UNPARSABLE_BODY = (
    b'{"error":{"code":400,"reason":"INVALID_ARGUMENT","message":"request: not a valid HTTP/1.1 request",'
    b'"metadata":{"field":"request"},"trace_id":""}}'
)
_UNPARSABLE = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(_UNPARSABLE_BODY)).encode()
    + b"\r\nconnection: close\r\n\r\n"
    + _UNPARSABLE_BODY
)
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 16\r\n"
    b"connection: close\r\n\r\nrequest timeout\n"
)


@dataclass
class ConnectionGuard:
    """The limits of one server and the open connections of each client address (shared by its connections)."""

    header_timeout_s: float
    body_timeout_s: float
    # 0: no cap (behind a proxy every client has the proxy's address: cap there instead).
    max_per_client: int
    open: Counter[str] = field(default_factory=Counter)

    def admit(self, address: str) -> bool:
        if self.max_per_client and self.open[address] >= self.max_per_client:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def protocol(self) -> type[asyncio.Protocol]:
        """uvicorn's ``http`` protocol class bound to this guard (uvicorn builds one per connection)."""
        guard = self

        class Guarded(GuardedHttpToolsProtocol):
            _guard = guard

        return Guarded


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header and body timeouts and the per-address cap of ``_guard``."""

    _guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._received_any = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        if not self._guard.admit(address):
            transport.abort()
            return
        self._address = address
        self._arm(self._guard.header_timeout_s, headers=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received_any = True
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a keep-alive connection's next request: its headers are timed anew
            self._arm(self._guard.header_timeout_s, headers=True)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._arm(self._guard.body_timeout_s, headers=False)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()
        # The WebSocket protocol owns the transport now: it gives the address's place back when it closes.
        websocket = self.transport.get_protocol()
        closed = websocket.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            self._release()
            closed(exc)

        websocket.connection_lost = connection_lost  # type: ignore[method-assign]

    def send_400_response(self, msg: str) -> None:
        """A request the parser refused (malformed request line, headers or chunking): the API's error body,
        naming ``request`` as the field, instead of uvicorn's plain text."""
        self._disarm()
        self.transport.write(_UNPARSABLE)
        self.transport.close()

    def _arm(self, timeout_s: float, *, headers: bool) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(timeout_s, self._expired, headers)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, headers: bool) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if headers and self._received_any and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def _release(self) -> None:
        if self._address is not None:
            self._guard.release(self._address)
            self._address = None
