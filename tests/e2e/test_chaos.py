"""``tidings chaos`` in its short profile: every fault of the full run, back to back at a low rate, on the stack
shape; it exits 0 only when nothing acknowledged was lost, stored twice or reordered, every receiver got every
message and every unread count is exact."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.e2e.conftest import fresh_database
from tests.e2e.fleet import ROOT

RUN_FOR_S = 900


async def test_the_short_chaos_profile_loses_nothing(tmp_path: Path) -> None:
    output = tmp_path / "RELIABILITY.md"
    async with fresh_database() as database_url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tidings", "chaos", "--profile", "short", "--rate", "60", "--people", "24",
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
    faults = ("chat paused", "MariaDB delayed", "persist job killed", "push job killed", "chat killed", "bff killed",
              "Redis flushed", "Redis killed", "MariaDB killed", "Kafka killed")  # fmt: skip
    for fault in faults:
        assert f"| {fault} |" in written
