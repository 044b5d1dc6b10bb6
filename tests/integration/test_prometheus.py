"""The Prometheus started by ./scripts/stack scrapes every module of ours and reports each up, then down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.conftest import fresh_database
from tests.e2e.fleet import ROOT, Fleet
from tests.integration.conftest import PROMETHEUS_URL

MODULES = ("account", "chat", "job", "task", "admin", "bff")


Scrapes = dict[str, tuple[str, float | None]]


async def scraped(client: httpx.AsyncClient) -> Scrapes:
    """Per scrape job: its target's health and the start time its process last reported."""
    targets = (await client.get("/api/v1/targets", params={"state": "active"})).json()["data"]["activeTargets"]
    health = {target["labels"]["job"]: target["health"] for target in targets}
    query = {"query": "process_start_time_seconds"}
    starts = {
        series["metric"]["job"]: float(series["value"][1])
        for series in (await client.get("/api/v1/query", params=query)).json()["data"]["result"]
    }
    return {job: (state, starts.get(job)) for job, state in health.items()}


async def wait_until(client: httpx.AsyncClient, done: Callable[[Scrapes], bool], timeout_s: float = 60) -> Scrapes:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await scraped(client)
        if done(state) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(1)


async def test_prometheus_scrapes_every_module_up_and_sees_them_go_down(tmp_path: Path) -> None:
    started = time.time()
    async with fresh_database() as database_url:
        fleet = Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env={"TIDINGS_DATABASE__URL": database_url})
        try:
            for name in MODULES:
                await fleet.start(name)
            async with httpx.AsyncClient(base_url=PROMETHEUS_URL, timeout=5) as client:

                def all_up(state: Scrapes) -> bool:
                    # Up, and scraped from these very processes (not a reading left by an earlier run).
                    return all(
                        state.get(name, ("", None))[0] == "up" and (state[name][1] or 0) >= started - 2
                        for name in MODULES
                    )

                state = await wait_until(client, all_up)
                assert all_up(state), state
                for name in MODULES:
                    assert await fleet.stop(name) == 0, fleet.tail(name)
                state = await wait_until(client, lambda s: all(s[n][0] == "down" for n in MODULES))
                assert all(state[name][0] == "down" for name in MODULES), state
        finally:
            await fleet.close()
