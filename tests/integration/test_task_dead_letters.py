"""The dead-letters task on real Kafka and MariaDB: a poison record a real consumer gave up on is reported with its
reason, and a replay brings it back to its source topic once, however often it is asked for."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.bus import eventually
from tests.contracts.task_deadletters import DeadLetterLogContract, Kill, ReplayLogContract, Republished
from tests.contracts.task_runs import held_lease
from tests.integration.conftest import KafkaBusFactory
from tidings.pkg.bus import Headers, Record, TopicSpec
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.deadletter import dead_letter_event, dead_letter_topic
from tidings.pkg.bus.kafka import KafkaEventBus
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.clock import wall_ms
from tidings.task.biz.deadletters import DeadLetterLog, DeadLetters, ReplayLog, Selection
from tidings.task.data.deadletters import BusDeadLetters, SQLReplayLog


@pytest.fixture
def prefix(kafka_prefix: str) -> str:
    return kafka_prefix


@pytest.fixture
async def bus(kafka_bus: KafkaBusFactory) -> KafkaEventBus:
    return await kafka_bus()


def on(bus: KafkaEventBus) -> BusDeadLetters:
    async def opened() -> KafkaEventBus:
        return bus

    return BusDeadLetters(opened, batch=2)


class TestDeadLetterLogOnKafka(DeadLetterLogContract):
    @pytest.fixture
    def dead_letters(self, bus: KafkaEventBus) -> DeadLetterLog:
        return on(bus)

    @pytest.fixture
    def kill(self, bus: KafkaEventBus) -> Kill:
        offsets: dict[str, int] = {}

        async def dead_letter(
            source: str, key: bytes, value: bytes, headers: Headers, *, group: str, reason: str, error: Exception
        ) -> None:
            await bus.ensure_topics([TopicSpec(source, 1), TopicSpec(dead_letter_topic(source), 1)])
            offsets[source] = offsets.get(source, -1) + 1
            record = Record(source, 0, offsets[source], key, value, headers)
            await bus.publish_many([dead_letter_event(record, group=group, reason=reason, error=error)])

        return dead_letter

    @pytest.fixture
    def republished(self, bus: KafkaEventBus) -> Republished:
        async def at(source: str) -> list[tuple[bytes, bytes, Headers]]:
            return [(r.key, r.value, r.headers) async for batch in bus.read_from_start(source) for r in batch]

        return at


class TestReplayLogOnMariaDB(ReplayLogContract):
    @pytest.fixture
    async def replays(self, mysql_engine: AsyncEngine) -> ReplayLog:
        return SQLReplayLog(mysql_engine, await held_lease(mysql_engine, "dead-letters"))


async def test_a_poison_record_is_reported_with_its_reason_and_a_replay_reaches_its_source_once(
    kafka_bus: KafkaBusFactory, kafka_prefix: str, mysql_engine: AsyncEngine
) -> None:
    source = f"{kafka_prefix}chat.message.sent"
    dlq = dead_letter_topic(source)
    publisher, consuming = await kafka_bus(), await kafka_bus()
    await publisher.ensure_topics([TopicSpec(source, 3)])
    handled: list[bytes] = []
    fixed = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        for record in records:
            if record.value == b"poison" and not fixed.is_set():
                raise ValueError("cannot parse poison")
        # Idempotent, as the real consumers are: a value handled before is not handled again.
        handled.extend(record.value for record in records if record.value not in handled)

    consumer = OrderedConsumer(
        consuming,
        group=f"{kafka_prefix}persist",
        topics=[source],
        handler=handle,
        metrics=ConsumerMetrics(CollectorRegistry()),
        options=ConsumerOptions(workers=2, max_attempts=2, backoff_initial_s=0.01, commit_interval_s=0.1),
    )
    await consumer.start()
    try:
        await publisher.publish(source, b"1", b"first", (("event-type", b"chat.MessageSent"),))
        await publisher.publish(source, b"2", b"poison", (("event-type", b"chat.MessageSent"),))
        await publisher.publish(source, b"3", b"third")
        dead_letters = DeadLetters(
            on(publisher), SQLReplayLog(mysql_engine, await held_lease(mysql_engine, "dead-letters")), [dlq], wall_ms
        )
        await eventually(lambda: {b"first", b"third"} <= set(handled), "the good records handled")
        async with asyncio.timeout(30):
            # Polling on purpose: the consumer dead-letters the poison record after its retries, in its own time.
            while (await dead_letters.report()).total < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        [topic] = (await dead_letters.report()).topics
        assert (topic.topic, topic.count, topic.by_reason, topic.replayed) == (dlq, 1, {"handler_error": 1}, 0)
        assert topic.oldest_ms is not None
        assert topic.oldest_ms > 0
        assert b"poison" not in handled

        fixed.set()  # the bug is fixed; the operator replays
        chosen = Selection(dlq, reasons=frozenset({"handler_error"}))
        first = await dead_letters.replay(chosen)
        second = await dead_letters.replay(chosen)
        assert (first.replayed, first.already, second.replayed, second.already) == (1, 0, 0, 1)
        await eventually(lambda: b"poison" in handled, "the replayed record handled")
    finally:
        await consumer.stop()

    copies = [
        record async for batch in publisher.read_from_start(source) for record in batch if record.value == b"poison"
    ]
    assert len(copies) == 2  # the original and one replay
    original, replayed = sorted(copies, key=lambda record: record.offset)  # one key: one partition
    assert (replayed.key, replayed.headers) == (original.key, original.headers)
    [topic] = (await dead_letters.report()).topics
    assert (topic.count, topic.replayed) == (1, 1)
