"""The event bus contract on a real Kafka broker, and ``OrderedConsumer`` handing partitions over in a group."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from tests.contracts.bus import BusFactory, EventBusContract, eventually
from tests.integration.conftest import KAFKA_BOOTSTRAP, unique
from tidings.pkg.bus import Event, EventBus, Record, TopicSpec, UnknownTopic
from tidings.pkg.bus.consumer import ConsumerOptions, Handler, OrderedConsumer
from tidings.pkg.bus.kafka import KafkaEventBus
from tidings.pkg.bus.metrics import ConsumerMetrics


def kafka_bus() -> KafkaEventBus:
    # Short heartbeats so that a member joining or leaving is noticed in about a second.
    return KafkaEventBus(KAFKA_BOOTSTRAP, timeout_s=10, session_timeout_ms=6_000, heartbeat_interval_ms=300)


async def delete_topics(prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10_000)
    async with asyncio.timeout(30):
        await admin.start()
        try:
            ours = [topic for topic in await admin.list_topics() if topic.startswith(prefix)]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()


class TestKafkaEventBus(EventBusContract):
    @pytest.fixture
    async def bus_factory(self, prefix: str) -> AsyncIterator[BusFactory]:
        opened: list[EventBus] = []

        async def open_bus() -> EventBus:
            bus = kafka_bus()
            await bus.start()
            opened.append(bus)
            return bus

        yield open_bus
        for bus in opened:
            await bus.close()
        await delete_topics(prefix)


@dataclass
class Handled:
    member: str
    key: str
    n: int


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = unique("it.ordered")
    yield name
    await delete_topics(name)


async def test_a_member_leaving_mid_stream_hands_its_partitions_over(prefix: str) -> None:
    topic, group = f"{prefix}.sent", f"{prefix}.persist"
    keys = [f"conversation-{k}" for k in range(30)]
    per_key = 40
    log: list[Handled] = []

    def handler(member: str) -> Handler:
        async def handle(records: list[Record]) -> None:
            await asyncio.sleep(random.uniform(0, 0.004))
            for record in records:
                key, n = record.value.decode().rsplit(":", 1)
                log.append(Handled(member, key, int(n)))

        return handle

    buses = [kafka_bus() for _ in range(3)]
    for bus in buses:
        await bus.start()
    publisher, bus_a, bus_b = buses
    try:
        await publisher.ensure_topics([TopicSpec(topic, 4)])
        options = ConsumerOptions(workers=4, batch_size=10, commit_interval_s=0.1, drain_timeout_s=10)
        a = OrderedConsumer(
            bus_a,
            group=group,
            topics=[topic],
            handler=handler("a"),
            metrics=ConsumerMetrics(CollectorRegistry()),
            options=options,
        )
        b = OrderedConsumer(
            bus_b,
            group=group,
            topics=[topic],
            handler=handler("b"),
            metrics=ConsumerMetrics(CollectorRegistry()),
            options=options,
        )
        await a.start()
        await b.start()

        async def publish_slowly() -> None:
            for n in range(per_key):
                await publisher.publish_many([Event(topic, key.encode(), f"{key}:{n}".encode()) for key in keys])
                await asyncio.sleep(0.02)

        producing = asyncio.create_task(publish_slowly())
        await eventually(
            lambda: {"a", "b"} <= {entry.member for entry in log} and len(log) >= 200,
            "both members handle records",
        )
        await a.stop()
        stopped_at = len(log)
        await producing
        expected = {(key, n) for key in keys for n in range(per_key)}
        await eventually(
            lambda: expected <= {(entry.key, entry.n) for entry in log}, "every record handled", deadline_s=60
        )
        await b.stop()
    finally:
        for bus in buses:
            await bus.close()

    assert stopped_at < len(expected), "a should leave while records are still coming"
    assert {entry.member for entry in log[stopped_at:]} == {"b"}
    # Per key, every record is first handled in publish order (redeliveries of handled records may repeat).
    first_seen: dict[str, list[int]] = defaultdict(list)
    for entry in log:
        if entry.n not in first_seen[entry.key]:
            first_seen[entry.key].append(entry.n)
    assert first_seen == {key: list(range(per_key)) for key in keys}


async def test_publishing_to_a_missing_topic_names_the_topic() -> None:
    # The producer waits for the topic's metadata until the timeout; a short one keeps this test quick.
    bus = KafkaEventBus(KAFKA_BOOTSTRAP, timeout_s=2)
    await bus.start()
    try:
        with pytest.raises(UnknownTopic, match=r"it\.missing"):
            await bus.publish(unique("it.missing"), b"k", b"v")
    finally:
        await bus.close()
