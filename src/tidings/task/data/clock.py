"""The wall clock the use cases compare stored times with."""

from __future__ import annotations

import time


def wall_ms() -> int:
    """Unix time in milliseconds, like every stored time."""
    return time.time_ns() // 1_000_000
