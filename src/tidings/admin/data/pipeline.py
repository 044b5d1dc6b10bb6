"""``BusPipeline``: consumer lag and dead letters read from the event bus itself (Kafka's or the embedded log's
offsets), so the figures need no metrics backend and hold in both deployments."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from tidings.admin.biz.model import DeadLetters, GroupLag
from tidings.pkg.bus import EventBus, UnknownTopic
from tidings.pkg.bus.deadletter import dead_letter_topic


class BusPipeline:
    def __init__(self, bus: EventBus, groups: Mapping[str, Sequence[str]]) -> None:
        """``groups``: each consumer group and the topic names it reads."""
        self._bus = bus
        self._groups = groups

    def _topics(self) -> list[str]:
        return sorted({topic for topics in self._groups.values() for topic in topics})

    async def _offsets(self, topics: Sequence[str]) -> dict[str, dict[int, tuple[int, int]]]:
        """Each existing topic's partitions' (earliest, end); topics not created are left out."""

        async def one(topic: str) -> dict[int, tuple[int, int]] | None:
            try:
                return {tp.partition: span for tp, span in (await self._bus.offsets(topic)).items()}
            except UnknownTopic:
                return None

        async with asyncio.TaskGroup() as group:
            calls = {topic: group.create_task(one(topic)) for topic in topics}
        return {topic: found for topic, call in calls.items() if (found := call.result()) is not None}

    async def lag(self) -> list[GroupLag]:
        offsets = await self._offsets(self._topics())
        async with asyncio.TaskGroup() as tasks:
            committed = {
                group: tasks.create_task(self._bus.committed(group, [t for t in topics if t in offsets]))
                for group, topics in self._groups.items()
            }
        found = []
        for group, topics in self._groups.items():
            done = {(tp.topic, tp.partition): offset for tp, offset in committed[group].result().items()}
            for topic in topics:
                if topic in offsets:
                    behind = sum(
                        end - max(start, done.get((topic, partition), start))
                        for partition, (start, end) in offsets[topic].items()
                    )
                    found.append(GroupLag(group, topic, behind))
        return found

    async def dead_letters(self) -> list[DeadLetters]:
        offsets = await self._offsets([dead_letter_topic(topic) for topic in self._topics()])
        return [
            DeadLetters(topic, sum(end - start for start, end in partitions.values()))
            for topic, partitions in sorted(offsets.items())
        ]
