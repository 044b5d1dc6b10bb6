"""The Prometheus started by ./scripts/stack scrapes a module of ours and reports it up."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from tests.integration.conftest import PROMETHEUS_URL

ROOT = Path(__file__).resolve().parents[2]


async def job_target_health(client: httpx.AsyncClient) -> str | None:
    targets = (await client.get("/api/v1/targets", params={"state": "active"})).json()["data"]["activeTargets"]
    for target in targets:
        if target["labels"].get("job") == "job":
            health: str = target["health"]
            return health
    return None


async def scraped_start_time(client: httpx.AsyncClient) -> float | None:
    """The start time of the job process Prometheus last scraped, as that process reported it."""
    query = {"query": 'process_start_time_seconds{job="job"}'}
    result = (await client.get("/api/v1/query", params=query)).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def test_prometheus_reports_a_running_module_as_up_and_a_stopped_one_as_down() -> None:
    started = time.time()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "tidings", "serve", "job", "--config", str(ROOT / "configs" / "stack.yaml")],
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TIDINGS_LOG__LEVEL": "WARNING"},
    )
    try:
        async with httpx.AsyncClient(base_url=PROMETHEUS_URL, timeout=5) as client:
            health, scraped_start = None, None
            deadline = time.monotonic() + 60
            # Up, and scraped from this very process (not a reading left by an earlier one).
            while time.monotonic() < deadline and (health != "up" or (scraped_start or 0) < started - 2):
                if process.returncode is not None:
                    stderr = await process.stderr.read() if process.stderr else b""
                    raise AssertionError(f"tidings serve job exited: {stderr.decode()}")
                health = await job_target_health(client)
                scraped_start = await scraped_start_time(client)
                await asyncio.sleep(1)
            assert health == "up"
            assert scraped_start is not None
            assert scraped_start >= started - 2
            up = (await client.get("/api/v1/query", params={"query": 'up{job="job"}'})).json()
            assert up["data"]["result"][0]["value"][1] == "1"

            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=30) == 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and health != "down":
                health = await job_target_health(client)
                await asyncio.sleep(1)
            assert health == "down"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
