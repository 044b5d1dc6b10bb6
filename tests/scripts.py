"""The middleware scripts (``scripts/stack``, ``redis-cluster``, ``kafka-cluster``, ``mariadb-replica``) as the
suites run them to kill, stop and restart the things they prove survivable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


async def run_script(name: str, *args: str, timeout_s: float = 240) -> str:
    """Run ``scripts/NAME ARGS``; its output, or the test fails with it (also when it takes over ``timeout_s``)."""
    command = f"scripts/{name} {' '.join(args)}"
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / name), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{command} did not finish within {timeout_s}s")
    output = out.decode(errors="replace")
    if process.returncode != 0:
        pytest.fail(f"{command} failed:\n{output}")
    return output
