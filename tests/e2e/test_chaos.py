"""``tidings chaos`` in its short profile on the stack shape; it exits 0 only when nothing acknowledged was lost,
stored twice or reordered, every receiver got every message and every unread count is exact.

- one instance of each process: every fault of the full run, back to back at a low rate;
- two instances of each (bff, account, chat, both job processes, task): one of each killed at once, then a rolling
  restart of every process under load, with no send given up (every failed attempt succeeds on a retry).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import fresh_database
from tests.e2e.fleet import ROOT

RUN_FOR_S = 900
FAULTS = {
    1: ("chat paused", "MariaDB delayed", "persist job killed", "push job killed", "chat killed", "bff killed",
        "Redis flushed", "Redis killed", "MariaDB killed", "Kafka killed"),
    2: ("one of each killed", "rolling restart"),
}  # fmt: skip


@pytest.mark.timeout(RUN_FOR_S + 60)
@pytest.mark.parametrize("instances", [1, 2], ids=["one", "two-of-each"])
async def test_the_short_chaos_profile_loses_nothing(tmp_path: Path, instances: int) -> None:
    output = tmp_path / "RELIABILITY.md"
    async with fresh_database() as database_url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tidings", "chaos", "--profile", "short", "--rate", "60", "--people", "24",
            "--instances", str(instances),
            "--config", str(ROOT / "configs" / "stack.yaml"), "--stack", str(ROOT / "scripts" / "stack"),
            "--output", str(output),
            cwd=ROOT,
            env={**os.environ, "TIDINGS_DATABASE__URL": database_url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        printed, _ = await asyncio.wait_for(process.communicate(), RUN_FOR_S)
    report = printed.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    written = output.read_text()
    assert "nothing lost, duplicated or reordered" in written
    assert "sends given up after 120 s: 0" in written
    for fault in FAULTS[instances]:
        assert f"| {fault} |" in written
