"""The client address an API sees: the connection's peer unless a trusted proxy forwarded another. A forwarded
header from anyone else, even from this machine, changes nothing (the per-address limits count that address)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI, Request

from tidings.bench.system import free_port
from tidings.pkg.conf import ApiConf, Listen
from tidings.pkg.transport.http import HttpServer

FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def app() -> FastAPI:
    app = FastAPI()

    @app.get("/who")
    async def who(request: Request) -> dict[str, str]:
        return {"host": request.client.host if request.client else "", "scheme": request.url.scheme}

    return app


async def seen(trusted: Sequence[str]) -> dict[str, str]:
    listen = Listen(port=free_port())
    server = HttpServer("public", app(), listen, trusted_proxies=trusted)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            answer = await client.get("/who", headers=FORWARDED)
            body: dict[str, str] = answer.json()
            return body
    finally:
        await server.stop()


async def test_forwarded_headers_from_an_untrusted_peer_change_nothing() -> None:
    assert await seen([]) == {"host": "127.0.0.1", "scheme": "http"}


async def test_a_trusted_proxy_names_the_client() -> None:
    assert await seen(["127.0.0.1"]) == {"host": "203.0.113.7", "scheme": "https"}
    assert await seen(["127.0.0.0/8"]) == {"host": "203.0.113.7", "scheme": "https"}


async def test_a_peer_outside_the_trusted_networks_is_not_believed() -> None:
    assert (await seen(["10.0.0.0/8"]))["host"] == "127.0.0.1"


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert ApiConf(http=Listen(port=1), trusted_proxies=["10.1.2.3", "10.0.0.0/8"]).trusted_proxies == [
        "10.1.2.3/32",
        "10.0.0.0/8",
    ]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        ApiConf(http=Listen(port=1), trusted_proxies=["proxy.example"])
