"""A public HTTP port against slow and greedy clients: a connection that sends nothing, headers or a body trickled
byte by byte are cut off at their timeouts; one address cannot hold more than its share of connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request, WebSocket
from websockets.asyncio.client import connect

from tidings.bench.system import free_port
from tidings.pkg.conf import Listen
from tidings.pkg.transport.guard import ConnectionGuard
from tidings.pkg.transport.http import HttpServer

TIMEOUT_S = 0.5
CAP = 3
# Long enough for a timeout to have fired on a loaded machine, short enough to fail a server that never cuts off.
CUT_OFF_S = 5.0


def app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.receive_text()

    return app


@pytest.fixture
async def port() -> AsyncIterator[int]:
    guard = ConnectionGuard(header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S, max_per_client=CAP)
    listen = Listen(port=free_port())
    server = HttpServer("public", app(), listen, guard=guard, keep_alive_s=1)
    await server.start()
    yield listen.port
    await server.stop()


async def open_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded: a server that never does fails)."""
    async with asyncio.timeout(CUT_OFF_S):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    reader, writer = await open_connection(port)
    assert await until_closed(reader) == b""
    writer.close()


async def test_headers_trickled_line_by_line_are_answered_408_and_closed(port: int) -> None:
    reader, writer = await open_connection(port)
    writer.write(b"POST /echo HTTP/1.1\r\n")
    answer = asyncio.create_task(until_closed(reader))
    for line in (b"host: x\r\n", b"x-a: 1\r\n", b"x-b: 2\r\n", b"x-c: 3\r\n"):
        await asyncio.sleep(TIMEOUT_S / 2)
        if writer.is_closing() or answer.done():
            break
        writer.write(line)
    assert (await answer).startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_a_body_trickled_byte_by_byte_is_cut_off(port: int) -> None:
    reader, writer = await open_connection(port)
    writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n")
    answer = asyncio.create_task(until_closed(reader))
    for _ in range(20):
        await asyncio.sleep(TIMEOUT_S / 4)
        if answer.done():
            break
        writer.write(b"a")
    assert b" 200 " not in await answer
    writer.close()


async def test_prompt_requests_on_a_keep_alive_connection_are_served(port: int) -> None:
    reader, writer = await open_connection(port)
    for _ in range(3):
        writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello")
        async with asyncio.timeout(CUT_OFF_S):
            status = await reader.readline()
            assert status.startswith(b"HTTP/1.1 200 ")
            while (await reader.readline()) != b"\r\n":
                pass
            assert await reader.readexactly(len(b'{"bytes":5}')) == b'{"bytes":5}'
        await asyncio.sleep(TIMEOUT_S * 1.5)  # idle between requests: the keep-alive timeout (1 s) allows it
    writer.close()


async def test_one_address_holds_at_most_its_cap_of_connections_websockets_included(port: int) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws") as websocket:
        await websocket.send("hi")
        assert await websocket.recv() == "hi"
        held = [await open_connection(port) for _ in range(CAP - 1)]
        reader, writer = await open_connection(port)
        # Refused at once, well before any timeout.
        async with asyncio.timeout(TIMEOUT_S / 2):
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""
        writer.close()
        for _, held_writer in held:
            held_writer.close()
    # The WebSocket gave its place back when it closed, as did the others: a new connection is served.
    await asyncio.sleep(0.1)
    reader, writer = await open_connection(port)
    writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    assert (await until_closed(reader)).startswith(b"HTTP/1.1 200 ")
    writer.close()


async def test_a_request_that_is_not_http_gets_the_error_body_naming_the_field(port: int) -> None:
    reader, writer = await open_connection(port)
    writer.write(b"GET /\x00 HTTP/1.1\r\nhost: x\r\n\r\n")
    answer = await until_closed(reader)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    error = json.loads(body)["error"]
    assert (error["reason"], error["metadata"]) == ("INVALID_ARGUMENT", {"field": "request"})
    writer.close()
