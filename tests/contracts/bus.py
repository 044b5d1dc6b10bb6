"""The behaviour every ``EventBus`` adapter must have; run against the embedded log (unit) and Kafka (integration).

A subclass provides ``bus_factory``: each call opens (and starts) a bus on the *same* storage, which is how the
suite restarts a bus. It closes what it opened and removes the topics named with ``prefix`` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

import pytest

from tidings.pkg.bus import (
    Event,
    EventBus,
    Record,
    Subscription,
    TopicConflict,
    TopicPartition,
    TopicSpec,
    UnknownTopic,
)
from tidings.pkg.bus.partitioner import partition_for

BusFactory = Callable[[], Awaitable[EventBus]]


async def eventually(condition: Callable[[], object], what: str, *, deadline_s: float = 30.0) -> None:
    """Wait until ``condition()`` is true, or fail naming ``what``: a bound on waiting, not a timing assertion."""
    try:
        async with asyncio.timeout(deadline_s):
            # Polling on purpose: the state belongs to the code under test, which offers no event to wait on.
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not within {deadline_s}s: {what}")


async def read(subscription: Subscription, count: int, *, deadline_s: float = 30.0) -> list[Record]:
    """Poll until ``count`` records arrived (a group join may take a moment on Kafka), or fail."""
    records: list[Record] = []
    async with asyncio.timeout(deadline_s):
        while len(records) < count:
            records.extend(await subscription.poll(count - len(records), timeout_s=0.5))
    return records


class EventBusContract:
    @pytest.fixture
    def prefix(self) -> str:
        return f"contract.{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def bus_factory(self) -> BusFactory:
        raise NotImplementedError("a subclass opens its adapter here")

    @pytest.fixture
    async def bus(self, bus_factory: BusFactory) -> EventBus:
        return await bus_factory()

    async def topic(self, bus: EventBus, prefix: str, name: str, partitions: int) -> str:
        topic = f"{prefix}.{name}"
        await bus.ensure_topics([TopicSpec(topic, partitions)])
        return topic

    async def test_a_published_event_is_read_back_with_key_value_and_headers(self, bus: EventBus, prefix: str) -> None:
        topic = await self.topic(bus, prefix, "sent", 3)
        headers = (("event-type", b"chat.message.sent"), ("schema-version", b"1"), ("binary", b"\x00\xff"))
        partition, offset = await bus.publish(topic, b"conversation-1", b"hello", headers)
        subscription = await bus.subscribe(f"{prefix}.reader", [topic])
        try:
            (record,) = await read(subscription, 1)
        finally:
            await subscription.close()
        assert (record.topic, record.partition, record.offset) == (topic, partition, offset)
        assert (record.key, record.value, record.headers) == (b"conversation-1", b"hello", headers)
        assert record.timestamp_ms > 0

    async def test_one_key_stays_on_one_partition_in_publish_order(self, bus: EventBus, prefix: str) -> None:
        topic = await self.topic(bus, prefix, "ordered", 4)
        positions = [await bus.publish(topic, b"conversation-7", f"{n}".encode()) for n in range(20)]
        assert len({position.partition for position in positions}) == 1
        assert [position.offset for position in positions] == list(range(20))
        subscription = await bus.subscribe(f"{prefix}.reader", [topic])
        try:
            records = await read(subscription, 20)
        finally:
            await subscription.close()
        assert [record.value for record in records] == [f"{n}".encode() for n in range(20)]

    async def test_keys_go_to_the_partition_kafkas_murmur2_picks(self, bus: EventBus, prefix: str) -> None:
        # partition_for is Kafka's Java-client partitioner; both adapters must agree with it, hence with each other.
        topic = await self.topic(bus, prefix, "spread", 6)
        keys = [f"conversation-{n}".encode() for n in range(60)]
        positions = await bus.publish_many([Event(topic, key, b"x") for key in keys])
        assert [position.partition for position in positions] == [partition_for(key, 6) for key in keys]
        assert len({position.partition for position in positions}) == 6

    async def test_publish_many_keeps_the_order_of_its_events(self, bus: EventBus, prefix: str) -> None:
        topic = await self.topic(bus, prefix, "batch", 2)
        events = [Event(topic, f"k{n % 3}".encode(), f"{n}".encode()) for n in range(30)]
        positions = await bus.publish_many(events)
        subscription = await bus.subscribe(f"{prefix}.reader", [topic])
        try:
            records = await read(subscription, 30)
        finally:
            await subscription.close()
        by_position = {(record.partition, record.offset): record.value for record in records}
        assert [by_position[position] for position in positions] == [event.value for event in events]
        for key in (b"k0", b"k1", b"k2"):
            values = [int(record.value) for record in records if record.key == key]
            assert values == sorted(values)

    async def test_committed_offsets_survive_a_restart(
        self, bus: EventBus, bus_factory: BusFactory, prefix: str
    ) -> None:
        topic = await self.topic(bus, prefix, "restart", 1)
        group = f"{prefix}.group"
        await bus.publish_many([Event(topic, b"k", f"{n}".encode()) for n in range(10)])
        subscription = await bus.subscribe(group, [topic])
        try:
            records = await read(subscription, 10)
            await subscription.commit({records[5].topic_partition: records[5].offset + 1})
        finally:
            await subscription.close()
        await bus.close()

        reopened = await bus_factory()
        assert await reopened.committed(group, [topic]) == {records[5].topic_partition: 6}
        subscription = await reopened.subscribe(group, [topic])
        try:
            rest = await read(subscription, 4)
        finally:
            await subscription.close()
        assert [record.value for record in rest] == [b"6", b"7", b"8", b"9"]

    async def test_offsets_are_each_partitions_earliest_and_end(self, bus: EventBus, prefix: str) -> None:
        topic = await self.topic(bus, prefix, "offsets", 2)
        assert await bus.offsets(topic) == {TopicPartition(topic, 0): (0, 0), TopicPartition(topic, 1): (0, 0)}
        published = await bus.publish_many([Event(topic, f"k{n}".encode(), b"v") for n in range(7)])
        ends: dict[TopicPartition, tuple[int, int]] = {TopicPartition(topic, p): (0, 0) for p in (0, 1)}
        for sent in published:
            tp = TopicPartition(topic, sent.partition)
            ends[tp] = (0, max(ends[tp][1], sent.offset + 1))
        assert await bus.offsets(topic) == ends
        with pytest.raises(UnknownTopic):
            await bus.offsets(f"{prefix}.absent")

    async def test_a_new_group_starts_at_the_earliest_record(self, bus: EventBus, prefix: str) -> None:
        topic = await self.topic(bus, prefix, "earliest", 1)
        await bus.publish_many([Event(topic, b"k", f"{n}".encode()) for n in range(3)])
        first = await bus.subscribe(f"{prefix}.first", [topic])
        try:
            seen = await read(first, 3)
            await first.commit({seen[-1].topic_partition: seen[-1].offset + 1})
        finally:
            await first.close()
        second = await bus.subscribe(f"{prefix}.second", [topic])
        try:
            records = await read(second, 3)
        finally:
            await second.close()
        assert [record.offset for record in records] == [0, 1, 2]
        assert await bus.committed(f"{prefix}.second", [topic]) == {}

    async def test_ensure_topics_is_idempotent_and_creates_the_partition_count(
        self, bus: EventBus, prefix: str
    ) -> None:
        specs = [TopicSpec(f"{prefix}.one", 1), TopicSpec(f"{prefix}.five", 5)]
        await bus.ensure_topics(specs)
        await bus.publish(f"{prefix}.five", b"k", b"kept")
        await bus.ensure_topics(specs)
        assert await bus.partition_count(f"{prefix}.one") == 1
        assert await bus.partition_count(f"{prefix}.five") == 5
        subscription = await bus.subscribe(f"{prefix}.reader", [f"{prefix}.five"])
        try:
            (record,) = await read(subscription, 1)
        finally:
            await subscription.close()
        assert record.value == b"kept"

    async def test_a_different_partition_count_is_refused(self, bus: EventBus, prefix: str) -> None:
        topic = await self.topic(bus, prefix, "fixed", 2)
        with pytest.raises(TopicConflict, match="2 partitions"):
            await bus.ensure_topics([TopicSpec(topic, 3)])
        assert await bus.partition_count(topic) == 2

    async def test_a_missing_topic_is_an_error_not_created(self, bus: EventBus, prefix: str) -> None:
        with pytest.raises(UnknownTopic):
            await bus.partition_count(f"{prefix}.missing")
        with pytest.raises(UnknownTopic):
            await bus.subscribe(f"{prefix}.reader", [f"{prefix}.missing"])

    async def test_read_from_start_reads_every_record_in_batches_and_joins_no_group(
        self, bus: EventBus, prefix: str
    ) -> None:
        topic = await self.topic(bus, prefix, "whole", 3)
        events = [Event(topic, f"k{n % 7}".encode(), f"{n}".encode(), (("n", f"{n}".encode()),)) for n in range(40)]
        positions = await bus.publish_many(events)
        group = f"{prefix}.consumers"
        subscription = await bus.subscribe(group, [topic])
        try:
            seen = await read(subscription, 40)
            committed = {seen[0].topic_partition: seen[0].offset + 1}
            await subscription.commit(committed)
            # Beside the group's member (the embedded log allows it one): the read is no member of any group.
            batches = [batch async for batch in bus.read_from_start(topic, max_records=6)]
        finally:
            await subscription.close()
        assert all(0 < len(batch) <= 6 for batch in batches)
        records = [record for batch in batches for record in batch]
        by_position = {(record.partition, record.offset): record for record in records}
        assert len(by_position) == len(records) == 40
        assert [(by_position[p].key, by_position[p].value, by_position[p].headers) for p in positions] == [
            (event.key, event.value, event.headers) for event in events
        ]
        for partition in {position.partition for position in positions}:
            offsets = [record.offset for record in records if record.partition == partition]
            assert offsets == sorted(offsets)
        assert await bus.committed(group, [topic]) == committed

    async def test_read_from_start_stops_at_the_end_the_topic_had_when_it_began(
        self, bus: EventBus, prefix: str
    ) -> None:
        topic = await self.topic(bus, prefix, "growing", 1)
        await bus.publish_many([Event(topic, b"k", f"{n}".encode()) for n in range(5)])
        async with contextlib.aclosing(bus.read_from_start(topic, max_records=2)) as reading:
            values = [record.value for record in await anext(reading)]
            await bus.publish(topic, b"k", b"later")
            values += [record.value for batch in [batch async for batch in reading] for record in batch]
        assert values == [b"0", b"1", b"2", b"3", b"4"]

    async def test_read_from_start_of_an_empty_or_missing_topic(self, bus: EventBus, prefix: str) -> None:
        topic = await self.topic(bus, prefix, "empty", 2)
        assert [batch async for batch in bus.read_from_start(topic)] == []
        with pytest.raises(UnknownTopic):
            [batch async for batch in bus.read_from_start(f"{prefix}.missing")]
