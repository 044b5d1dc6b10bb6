"""The persist job on the embedded log and SQLite: what chat publishes lands in history once, in any weather."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.contracts.bus import eventually, read
from tidings import migrations
from tidings.job.biz.errors import TRANSIENT
from tidings.job.biz.persist import Persister
from tidings.job.data.heads import NoHeads
from tidings.job.data.history import NoHistoryWindow
from tidings.job.data.messages import SQLMessageStore
from tidings.job.data.telemetry import PersistTelemetry
from tidings.job.service.persist import GROUP, PersistHandler
from tidings.pkg import db
from tidings.pkg.bus import Event, events
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.deadletter import dead_letter_topic
from tidings.pkg.bus.embedded import EmbeddedLog
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.conf import DatabaseConf
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.biz.model import Conversation, Kind
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.data.publisher import BusEventPublisher
from tidings.service.chat.message import Message

TOPICS = events.Topics()
SENT = TOPICS.name(chat_topics.MESSAGE_SENT)


class FlakyStore(SQLMessageStore):
    """The real store, failing its first ``outages`` writes the way a database that is down fails."""

    def __init__(self, engine: AsyncEngine, outages: int) -> None:
        super().__init__(engine)
        self.outages = outages

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self.outages:
            self.outages -= 1
            raise OperationalError("INSERT", {}, ConnectionRefusedError("database restarting"))
        async with super()._write() as conn:
            yield conn


@dataclass
class Harness:
    engine: AsyncEngine
    log: EmbeddedLog
    registry: CollectorRegistry
    metrics: ConsumerMetrics
    consumers: list[OrderedConsumer]

    async def conversation(self, cid: int = 7) -> int:
        await SQLConversationRepo(self.engine).create(Conversation(cid, Kind.GROUP, "t", 1, 0, None, 0, 0, 0), [])
        return cid

    async def publish(self, messages: list[Message]) -> None:
        await BusEventPublisher(self.log, TOPICS).message_sent([(m, contextvars.copy_context()) for m in messages])

    async def start(self, store: SQLMessageStore | None = None) -> OrderedConsumer:
        persister = Persister(
            store or SQLMessageStore(self.engine), NoHistoryWindow(), NoHeads(), PersistTelemetry(CollectorRegistry())
        )
        consumer = OrderedConsumer(
            self.log,
            group=GROUP,
            topics=[SENT],
            handler=PersistHandler(persister).handle,
            metrics=self.metrics,
            options=ConsumerOptions(
                transient=TRANSIENT, commit_interval_s=0.02, backoff_initial_s=0.001, backoff_max_s=0.01
            ),
        )
        await consumer.start()
        self.consumers.append(consumer)
        return consumer

    async def history(self, cid: int) -> list[Message]:
        return await SQLMessageRepo(self.engine).after(cid, 0, 10_000)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    await migrations.upgrade(url)
    engine = db.create_engine(DatabaseConf(url=url))
    log = EmbeddedLog(tmp_path / "events.db", timeout_s=5)
    await log.start()
    await log.ensure_topics(TOPICS.specs(chat_topics.ALL))
    registry = CollectorRegistry()
    harness = Harness(engine, log, registry, ConsumerMetrics(registry), [])
    yield harness
    for consumer in harness.consumers:
        await consumer.stop()
    await log.close()
    await engine.dispose()


def messages(cid: int, seqs: range, *, at: int = 1_800_000_000_000) -> list[Message]:
    return [
        Message(cid * 100_000 + seq, cid, seq, 1 + seq % 3, f"c{cid}-{seq}", f"text {seq}", at + seq) for seq in seqs
    ]


async def test_published_messages_are_stored_once_and_advance_the_conversation(harness: Harness) -> None:
    cid = await harness.conversation()
    sent = messages(cid, range(1, 51))
    await harness.publish(sent[:30])
    await harness.publish(sent[20:])  # overlapping: a produce retried after a timeout
    await harness.start()
    await eventually(
        lambda: harness.metric("tidings_bus_consumer_records_total", topic=SENT, group=GROUP, outcome="handled") >= 60,
        "all records handled",
    )
    assert await harness.history(cid) == sent
    conversation = await SQLConversationRepo(harness.engine).get(cid)
    assert conversation is not None
    assert (conversation.max_seq, conversation.last_message_id) == (50, sent[-1].id)


async def test_a_restarted_consumer_redelivers_nothing_twice(harness: Harness) -> None:
    cid = await harness.conversation()
    sent = messages(cid, range(1, 41))
    await harness.publish(sent[:20])
    first = await harness.start()
    await eventually(
        lambda: harness.metric("tidings_bus_consumer_records_total", topic=SENT, group=GROUP, outcome="handled") >= 20,
        "first half handled",
    )
    await first.stop()
    harness.consumers.remove(first)
    await harness.publish(sent[20:])
    await harness.start()
    await eventually(
        lambda: harness.metric("tidings_bus_consumer_records_total", topic=SENT, group=GROUP, outcome="handled") >= 40,
        "second half handled",
    )
    assert await harness.history(cid) == sent


async def test_a_database_outage_is_waited_out_and_nothing_is_dead_lettered(harness: Harness) -> None:
    cid = await harness.conversation()
    sent = messages(cid, range(1, 11))
    await harness.publish(sent)
    store = FlakyStore(harness.engine, outages=12)  # more failures than max_attempts: only "transient" saves it
    await harness.start(store)
    await eventually(lambda: store.outages == 0, "the outage passed")
    await eventually(
        lambda: harness.metric("tidings_bus_consumer_records_total", topic=SENT, group=GROUP, outcome="handled") >= 10,
        "records handled after the outage",
    )
    assert await harness.history(cid) == sent
    assert (
        harness.metric("tidings_bus_consumer_dead_letters_total", topic=SENT, group=GROUP, reason="handler_error") == 0
    )


async def test_an_unknown_event_version_is_dead_lettered_and_the_rest_stored(harness: Harness) -> None:
    cid = await harness.conversation()
    sent = messages(cid, range(1, 4))
    await harness.publish(sent[:1])
    good = events.encode(TOPICS, chat_topics.MESSAGE_SENT, events.id_key(cid), chat_topics.MESSAGE_SENT.message())
    future = Event(
        good.topic, good.key, b"\x00", (("event-type", b"tidings.chat.v1.MessageSent"), ("event-version", b"2"))
    )
    await harness.log.publish_many([future])
    await harness.publish(sent[1:])
    await harness.start()
    await eventually(
        lambda: (
            harness.metric("tidings_bus_consumer_dead_letters_total", topic=SENT, group=GROUP, reason="unknown_version")
            == 1
        ),
        "the v2 record dead-lettered",
    )
    await eventually(
        lambda: harness.metric("tidings_bus_consumer_records_total", topic=SENT, group=GROUP, outcome="handled") >= 3,
        "the others handled",
    )
    assert await harness.history(cid) == sent
    subscription = await harness.log.subscribe("inspect", [dead_letter_topic(SENT)])
    [dead] = await read(subscription, 1)
    assert dead.header("event-version") == b"2"
    await subscription.close()


async def test_a_message_sent_without_a_message_is_a_poison_record(harness: Harness) -> None:
    cid = await harness.conversation()
    empty = events.encode(TOPICS, chat_topics.MESSAGE_SENT, events.id_key(cid), chat_topics.MESSAGE_SENT.message())
    await harness.log.publish_many([empty])
    sent = messages(cid, range(1, 3))
    await harness.publish(sent)
    await harness.start()
    await eventually(
        lambda: (
            harness.metric("tidings_bus_consumer_dead_letters_total", topic=SENT, group=GROUP, reason="handler_error")
            == 1
        ),
        "the empty record dead-lettered",
    )
    await eventually(
        lambda: harness.metric("tidings_bus_consumer_records_total", topic=SENT, group=GROUP, outcome="handled") >= 2,
        "the others handled",
    )
    assert await harness.history(cid) == sent
