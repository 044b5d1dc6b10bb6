from __future__ import annotations

import socket

import httpx
import pytest

from tidings.bench.system import free_port
from tidings.pkg.conf import Listen
from tidings.pkg.health import Check
from tidings.pkg.transport.http import ops_server


async def test_ops_endpoints_report_health_readiness_and_metrics() -> None:
    async def broken() -> None:
        raise ConnectionError("connection refused by 127.0.0.1:6379")

    async def fine() -> None:
        return None

    server = ops_server("job", Listen(port=free_port()), [Check("redis", broken), Check("database", fine)])
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"redis": "connection refused by 127.0.0.1:6379", "database": "ok"}
            metrics = await client.get("/metrics")
            assert "process_resident_memory_bytes" in metrics.text
    finally:
        await server.stop()


async def test_a_taken_port_is_an_error_that_names_the_server_and_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ops_server("task", Listen(port=port), [])
        with pytest.raises(OSError, match=rf"task: cannot listen on 127\.0\.0\.1:{port}"):
            await server.start()
