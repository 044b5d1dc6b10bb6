"""Kafka through aiokafka: idempotent acks=all produce with headers, then a consumer group's manual commit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import KAFKA_BOOTSTRAP, unique


@pytest.fixture
async def topic() -> AsyncIterator[str]:
    name = unique("smoke.message.sent")
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


async def test_topics_are_not_created_by_producing(topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP)
    await producer.start()
    try:
        partitions = await producer.partitions_for(topic)
        assert partitions == {0, 1, 2}
    finally:
        await producer.stop()


async def test_produce_idempotently_then_consume_and_commit_manually(topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = []
        for n in range(10):
            record = await producer.send_and_wait(
                topic,
                key=b"conversation-42",
                value=f"message {n}".encode(),
                headers=[("event-type", b"chat.message.sent"), ("schema-version", b"1")],
            )
            sent.append(record)
    finally:
        await producer.stop()
    # One key goes to one partition, in order.
    assert len({record.partition for record in sent}) == 1
    partition = TopicPartition(topic, sent[0].partition)
    assert [record.offset for record in sent] == list(range(sent[0].offset, sent[0].offset + 10))

    group = unique("smoke-group")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        received = []
        while len(received) < 10:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "no records arrived within 10 s"
            for records in batch.values():
                received.extend(records)
        assert [record.value for record in received] == [f"message {n}".encode() for n in range(10)]
        assert dict(received[0].headers) == {"event-type": b"chat.message.sent", "schema-version": b"1"}
        await consumer.commit({partition: received[-1].offset + 1})
        assert await consumer.committed(partition) == received[-1].offset + 1
    finally:
        await consumer.stop()
