"""The load client of the benchmarks: HTTP/1.1 keep-alive connections that cost the machine next to nothing.

The bench client shares the two cores with the system it measures, so every microsecond it spends is taken from
the system. httpx costs about 4 ms of CPU per request here and aiohttp's client several hundred µs; this one
writes prebuilt request bytes on an ``asyncio.Protocol`` and reads only the status line, ``Content-Length`` and the
body, in a few tens of µs. It is written by hand for that reason alone: it speaks just enough HTTP/1.1 for the
bff's JSON answers (``Content-Length`` bodies, keep-alive) and refuses anything else.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)


class ProtocolViolation(Exception):
    """The server answered in a way this client does not speak (no Content-Length, chunked, garbage)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self._buffer[:head_end])
        length = _CONTENT_LENGTH.search(head)
        # 204 and 304 answers have no body, and so no Content-Length.
        empty = head.startswith((b"HTTP/1.1 204 ", b"HTTP/1.1 304 "))
        if not head.startswith(b"HTTP/1.1 ") or (length is None and not empty):
            waiter.set_exception(ProtocolViolation(head[:200].decode(errors="replace")))
            return
        body_start = head_end + 4
        body_end = body_start + (int(length.group(1)) if length is not None else 0)
        if len(self._buffer) < body_end:
            return
        answer = Answer(int(head[9:12]), bytes(self._buffer[body_start:body_end]))
        del self._buffer[:body_end]
        if _CLOSE.search(head) and self.transport is not None:
            self.transport.close()
        waiter.set_result(answer)

    async def request(self, raw: bytes) -> Answer:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        try:
            return await self._waiter
        finally:
            self._waiter = None


class Client:
    """A pool of keep-alive connections to one ``http://host:port``; ``request`` borrows one per request."""

    def __init__(self, url: str, max_connections: int) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the load client speaks plain http://host:port, not {url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self.host_header = f"{self._host}:{self._port}"
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._open: set[_Connection] = set()

    def post(self, path: str, body: bytes, headers: str = "") -> bytes:
        """The bytes of a POST of a JSON ``body``; ``headers`` is extra header lines, each ending in CRLF."""
        return (
            f"POST {path} HTTP/1.1\r\nHost: {self.host_header}\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def request(self, raw: bytes) -> Answer:
        async with self._slots:
            connection = await self._borrow()
            try:
                answer = await connection.request(raw)
            except BaseException:
                self._drop(connection)
                raise
            if connection.closed:
                self._drop(connection)
            else:
                self._idle.append(connection)
            return answer

    async def _borrow(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open.discard(connection)
        _, connection = await asyncio.get_running_loop().create_connection(_Connection, self._host, self._port)
        self._open.add(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        self._open.discard(connection)
        if connection.transport is not None:
            connection.transport.close()

    def close(self) -> None:
        for connection in list(self._open):
            self._drop(connection)
        self._idle.clear()
