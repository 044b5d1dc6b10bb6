"""``tidings dev`` (what ``make run`` starts) as a newcomer meets it: every module up, then a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.client import Client
from tests.e2e.conftest import fresh_database
from tests.e2e.fleet import Fleet

ROOT = Path(__file__).resolve().parents[2]


async def test_dev_serves_health_on_8080_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # Run from an empty folder so the embedded SQLite files start from nothing, as on a fresh clone.
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "tidings", "dev", "--config", str(ROOT / "configs" / "dev.yaml")],
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TIDINGS_LOG__LEVEL": "WARNING"},
    )
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = await client.get("http://127.0.0.1:8080/healthz")
                    break
                except httpx.TransportError:
                    if process.returncode is not None or time.monotonic() > deadline:
                        stderr = await process.stderr.read() if process.stderr else b""
                        raise AssertionError(f"tidings dev did not come up: {stderr.decode()}") from None
                    await asyncio.sleep(0.2)
            assert health.status_code == 200
            assert health.json() == {"status": "ok"}
            for port in (8081, 8082, 8083, 8084, 8085):
                # Healthy is not yet ready: a module answers 503 until its consumers run (their start may follow
                # the first health answer by a moment).
                ready = await client.get(f"http://127.0.0.1:{port}/readyz")
                while ready.status_code != 200 and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    ready = await client.get(f"http://127.0.0.1:{port}/readyz")
                assert ready.status_code == 200, ready.text
        assert (tmp_path / ".data" / "tidings.db").exists()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
        stderr = (await process.stderr.read()).decode() if process.stderr else ""
        assert "http://127.0.0.1:8080" in stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_dev_on_the_real_middleware_runs_every_module_in_one_process(tmp_path: Path) -> None:
    """``tidings dev --config configs/stack.yaml``: one process, MariaDB, Redis and Kafka underneath."""
    async with fresh_database() as database_url:
        fleet = Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env={"TIDINGS_DATABASE__URL": database_url})
        client = Client()
        try:
            await fleet.start("dev")
            for port in (8081, 8082, 8083):
                fleet.processes["dev"].ready_port = port
                await fleet.wait_ready("dev")
            alice, bob = await client.register("alice"), await client.register("bob")
            conv = await client.direct(alice, bob)
            sent = await client.send(alice, conv["id"], "over kafka")
            assert sent.status_code == 201, sent.text
            await client.wait_for_max_seq(bob, conv["id"], sent.json()["message"]["seq"])
            [stored] = (await client.history(bob, conv["id"], after_seq=0))["messages"]
            assert stored["id"] == sent.json()["message"]["id"]
        finally:
            await client.close()
            await fleet.close()
