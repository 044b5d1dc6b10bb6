"""The event bus contract on a real Kafka broker, and ``OrderedConsumer`` handing partitions over in a group."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from tests.contracts.bus import BusFactory, EventBusContract, eventually
from tests.integration.conftest import KafkaBusFactory, unique
from tidings.pkg.bus import Event, Record, TopicSpec, UnknownTopic
from tidings.pkg.bus.consumer import ConsumerOptions, Handler, OrderedConsumer
from tidings.pkg.bus.metrics import ConsumerMetrics


class TestKafkaEventBus(EventBusContract):
    @pytest.fixture
    def prefix(self, kafka_prefix: str) -> str:
        return kafka_prefix

    @pytest.fixture
    def bus_factory(self, kafka_bus: KafkaBusFactory) -> BusFactory:
        return kafka_bus


@dataclass
class Handled:
    member: str
    key: str
    n: int


async def test_a_member_leaving_mid_stream_hands_its_partitions_over(
    kafka_bus: KafkaBusFactory, kafka_prefix: str
) -> None:
    topic, group = f"{kafka_prefix}.sent", f"{kafka_prefix}.persist"
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

    publisher, bus_a, bus_b = [await kafka_bus() for _ in range(3)]
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
    await eventually(lambda: expected <= {(entry.key, entry.n) for entry in log}, "every record handled", deadline_s=60)
    await b.stop()

    assert stopped_at < len(expected), "a should leave while records are still coming"
    assert {entry.member for entry in log[stopped_at:]} == {"b"}
    # Per key, every record is first handled in publish order (redeliveries of handled records may repeat).
    first_seen: dict[str, list[int]] = defaultdict(list)
    for entry in log:
        if entry.n not in first_seen[entry.key]:
            first_seen[entry.key].append(entry.n)
    assert first_seen == {key: list(range(per_key)) for key in keys}


async def test_publishing_to_a_missing_topic_names_the_topic(kafka_bus: KafkaBusFactory) -> None:
    # The producer waits for the topic's metadata until the timeout; a short one keeps this test quick.
    bus = await kafka_bus(timeout_s=2)
    with pytest.raises(UnknownTopic, match=r"it\.missing"):
        await bus.publish(unique("it.missing"), b"k", b"v")
