"""Per-partition progress of a parallel consumer: which offsets are out with workers, and the low watermark.

Workers finish records out of offset order (keys run in parallel), but a committed offset means "everything
before it is handled". So the commit point is the lowest offset still in flight, or the offset after the last
record handed out when nothing is in flight.
"""

from __future__ import annotations

from collections import deque

from tidings.pkg.bus.records import TopicPartition


class PartitionProgress:
    """Offsets of one partition handed to workers, in order, and which of them are handled."""

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        # False once the partition is revoked: its queued records are skipped and redelivered to the next owner.
        self.live = True
        # The offset last committed for this partition, while this member owns it.
        self.committed: int | None = None
        self._in_flight: deque[int] = deque()
        self._handled: set[int] = set()
        self._next: int | None = None

    def accept(self, offset: int) -> bool:
        """Take ``offset`` into flight; ``False`` if it is not past the last one (a re-fetch after a rebalance)."""
        if self._next is not None and offset < self._next:
            return False
        self._in_flight.append(offset)
        self._next = offset + 1
        return True

    def handled(self, offset: int) -> None:
        """``offset`` is done (handled or dead-lettered); move the watermark over every done offset at the front."""
        self._handled.add(offset)
        while self._in_flight and self._in_flight[0] in self._handled:
            self._handled.discard(self._in_flight.popleft())

    @property
    def pending(self) -> int:
        """How many accepted offsets are at or above the watermark (handled ones beyond a gap included)."""
        return len(self._in_flight)

    def commit_point(self) -> int | None:
        """The next offset to commit (lowest not yet handled), or ``None`` if nothing was accepted yet."""
        if self._in_flight:
            return self._in_flight[0]
        return self._next
