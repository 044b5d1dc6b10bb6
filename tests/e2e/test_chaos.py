"""``tidings chaos`` in its short profile on the stack shape; it exits 0 only when nothing acknowledged was lost,
stored twice or reordered, every receiver got every message and every unread count is exact.

- one instance of each process: every fault of the full run, back to back at a low rate;
- two instances of each (bff, account, chat, both job processes, task): one of each killed at once, then a rolling
  restart of every process under load, with no send given up (every failed attempt succeeds on a retry);
- on the cluster middleware (configs/cluster.yaml): a Kafka broker of three killed, a Redis Cluster master killed,
  the MariaDB read replica stopped.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import CLUSTER_PRIMARY, CLUSTER_REPLICA, MYSQL_SERVER, fresh_database
from tests.e2e.fleet import ROOT

RUN_FOR_S = 900


@dataclass(frozen=True)
class Case:
    config: str
    instances: int
    faults: tuple[str, ...]


CASES = {
    "one": Case("stack.yaml", 1, (
        "chat paused", "MariaDB delayed", "persist job killed", "push job killed", "chat killed", "bff killed",
        "Redis flushed", "Redis killed", "MariaDB killed", "Kafka killed")),
    "two-of-each": Case("stack.yaml", 2, ("one of each killed", "rolling restart")),
    "cluster": Case("cluster.yaml", 1, ("Kafka broker killed", "Redis master killed", "MariaDB replica stopped")),
}  # fmt: skip


@pytest.mark.timeout(RUN_FOR_S + 60)
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_the_short_chaos_profile_loses_nothing(tmp_path: Path, case: Case) -> None:
    output = tmp_path / "RELIABILITY.md"
    cluster = case.config == "cluster.yaml"
    async with fresh_database(CLUSTER_PRIMARY if cluster else MYSQL_SERVER) as database_url:
        env = {"TIDINGS_DATABASE__URL": database_url}
        if cluster:
            env["TIDINGS_DATABASE__REPLICA_URL"] = database_url.replace(CLUSTER_PRIMARY, CLUSTER_REPLICA)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tidings", "chaos", "--profile", "short", "--rate", "60", "--people", "24",
            "--instances", str(case.instances),
            "--config", str(ROOT / "configs" / case.config), "--stack", str(ROOT / "scripts" / "stack"),
            "--output", str(output),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        printed, _ = await asyncio.wait_for(process.communicate(), RUN_FOR_S)
    report = printed.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    written = output.read_text()
    assert "nothing lost, duplicated or reordered" in written
    assert "sends given up after 120 s: 0" in written
    for fault in case.faults:
        assert f"| {fault} |" in written
