"""The one member of a consumer group on the embedded log: positions in memory, committed offsets in SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from tidings.pkg.bus.records import BusError, Record, TopicPartition

if TYPE_CHECKING:
    from tidings.pkg.bus.embedded.log import EmbeddedLog


class EmbeddedSubscription:
    """``Subscription`` on an ``EmbeddedLog``; assigned every partition of its topics from the start."""

    def __init__(
        self,
        log: EmbeddedLog,
        group: str,
        positions: Mapping[TopicPartition, int],
        *,
        on_close: Callable[[str], None],
    ) -> None:
        self._log = log
        self._group = group
        # Where the next poll reads from; starts at the committed offsets, moves on at every poll (as in Kafka).
        self._positions = dict(positions)
        self._assignment = frozenset(positions)
        self._paused: set[TopicPartition] = set()
        self._highwater: dict[TopicPartition, int] = {}
        self._on_close = on_close
        self._closed = False

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self._closed:
                raise BusError(f"the subscription of group {self._group} is closed")
            appended = self._log.appended()
            readable = {tp: offset for tp, offset in self._positions.items() if tp not in self._paused}
            records: list[Record] = []
            if readable:
                records, ends = await self._log.fetch(readable, max_records)
                self._highwater.update(ends)
            for record in records:
                self._positions[record.topic_partition] = record.offset + 1
            remaining = deadline - loop.time()
            if records or remaining <= 0:
                return records
            # Woken at once by a publish in this process; the interval catches writes from other processes.
            try:
                async with asyncio.timeout(min(remaining, self._log.poll_interval_s)):
                    await appended.wait()
            except TimeoutError:
                pass

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        foreign = set(offsets) - self._assignment
        if foreign:
            raise BusError(f"group {self._group} cannot commit unassigned partitions {sorted(foreign)}")
        await self._log.commit(self._group, offsets)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assignment

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._paused.update(set(partitions) & self._assignment)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._paused.difference_update(partitions)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._highwater.get(partition)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(self._group)
