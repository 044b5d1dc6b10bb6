"""The one clock: wall time in milliseconds (what timestamps, expiries and leases are stored in) and a monotonic
reading in seconds (for durations and deadlines), behind a Protocol that use cases take by injection.

``FakeClock`` is the same clock moved by hand, for tests: ``advance(s=30)`` or ``advance(ms=500)`` moves both.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall time: milliseconds since the Unix epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for measuring durations."""


def wall_ms() -> int:
    """Wall time in milliseconds, for code that takes the clock as a plain callable."""
    return time.time_ns() // 1_000_000


class SystemClock:
    def now_ms(self) -> int:
        return wall_ms()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that stands still until ``advance`` moves it."""

    def __init__(self, now_ms: int = 1_800_000_000_000, monotonic: float = 1000.0) -> None:
        self.now = now_ms
        self.mono = monotonic

    def now_ms(self) -> int:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, *, s: float = 0, ms: int = 0) -> None:
        self.now += ms + round(s * 1000)
        self.mono += s + ms / 1000
