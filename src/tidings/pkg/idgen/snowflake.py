"""The snowflake generator: 41 bits of milliseconds since 2026-01-01, 10 bits of worker id, 12 of sequence.

Written here (some 40 lines) because the packages on PyPI either clash on the ``snowflake`` import name or do not
handle a clock that steps backwards. Ids from one worker are strictly increasing; ids from different workers are
ordered by their millisecond, so sorting ids sorts by creation time to within clock skew.
"""

from __future__ import annotations

from collections.abc import Callable

from tidings.pkg.clock import wall_ms

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER_ID = (1 << WORKER_BITS) - 1
_MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1


class ClockMovedBackwards(RuntimeError):
    """The wall clock went back further than the generator may bridge by running ahead of it."""


class Snowflake:
    """Generates ids for one worker. Not shared across processes: each process leases its own worker id.

    When the clock steps back (NTP), the generator keeps counting from its last millisecond instead of
    waiting, as long as it runs at most ``max_drift_ms`` ahead of the wall clock; beyond that it refuses,
    because ids would no longer say when they were made.
    """

    def __init__(
        self,
        worker_id: int,
        *,
        max_drift_ms: int = 2_000,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        if not 0 <= worker_id <= MAX_WORKER_ID:
            raise ValueError(f"worker_id must be in 0..{MAX_WORKER_ID}, got {worker_id}")
        self.worker_id = worker_id
        self._max_drift_ms = max_drift_ms
        self._clock_ms = clock_ms
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        now = self._clock_ms() - EPOCH_MS
        if now > self._last_ms:
            self._last_ms, self._sequence = now, 0
        elif self._sequence < _MAX_SEQUENCE:
            self._sequence += 1
        else:
            # This millisecond is used up (or the clock is behind us): borrow the next one.
            self._last_ms, self._sequence = self._last_ms + 1, 0
        if self._last_ms - now > self._max_drift_ms:
            raise ClockMovedBackwards(f"clock is {self._last_ms - now} ms behind the last id issued")
        return (self._last_ms << (WORKER_BITS + SEQUENCE_BITS)) | (self.worker_id << SEQUENCE_BITS) | self._sequence


def timestamp_ms(snowflake_id: int) -> int:
    """The Unix time in milliseconds at which ``snowflake_id`` was made."""
    return (snowflake_id >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS
