"""Readiness checks: a module is ready when every dependency it needs answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """A named dependency probe that raises when the dependency cannot serve."""

    name: str
    probe: Callable[[], Awaitable[None]]


async def run_checks(checks: Sequence[Check], timeout_s: float = 2.0) -> dict[str, str]:
    """Probe every dependency concurrently; ``"ok"`` or the reason it failed, per name."""

    async def one(check: Check) -> str:
        try:
            async with asyncio.timeout(timeout_s):
                await check.probe()
        except TimeoutError:
            return f"timed out after {timeout_s}s"
        except Exception as exc:  # a probe's failure of any kind is its answer
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return "ok"

    results = await asyncio.gather(*(one(check) for check in checks))
    return {check.name: result for check, result in zip(checks, results, strict=True)}
