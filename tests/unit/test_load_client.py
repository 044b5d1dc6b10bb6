"""The benches' load client reads the answers the bff gives: a body sized by Content-Length, and none for 204."""

from __future__ import annotations

import asyncio

import pytest

from tidings.bench import load

ANSWERS = {
    b"/json": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}",
    b"/read": b"HTTP/1.1 204 No Content\r\ncontent-type: application/json\r\n\r\n",
    b"/chunked": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
}


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while request := await reader.readuntil(b"\r\n\r\n"):
        writer.write(ANSWERS[request.split(b" ")[1]])
        await writer.drain()


async def test_bodies_by_content_length_and_none_for_204_on_one_connection() -> None:
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    client = load.Client(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", max_connections=1)
    try:
        for path in (b"/json", b"/read", b"/json"):
            got = await client.request(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (got.status, got.body) == ((200, b"{}") if path == b"/json" else (204, b""))
        with pytest.raises(load.ProtocolViolation):
            await client.request(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        client.close()
        server.close()
