"""The index job on Kafka, MariaDB and OpenSearch: a sent message becomes searchable with its sender's name, a
recall removes it and a replayed send keeps it removed, and a rename reaches the sender's messages."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.conftest import KAFKA_BOOTSTRAP, OPENSEARCH_URL, KafkaBusFactory, unique
from tests.integration.test_search_opensearch import drop_namespace
from tidings.bootstrap import Infra
from tidings.conf import Settings
from tidings.job.wire import index_consumer
from tidings.pkg.bus import events
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.kafka import KafkaEventBus
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.conf import BusConf, DatabaseConf, SearchConf
from tidings.search.model import MessageHit, MessageQuery, SearchIndex, SearchUnavailable
from tidings.service.account import topics as account_topics
from tidings.service.account.biz.user import Account
from tidings.service.account.data.publisher import BusUserEvents
from tidings.service.account.data.repos import SQLUserRepo
from tidings.service.account.user import User
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.data.publisher import BusEventPublisher
from tidings.service.chat.message import Message

T0 = 1_800_000_000_000
ADA = User(7, "ada", "Ada", "", "", T0)


@pytest.fixture
def topics(kafka_prefix: str) -> events.Topics:
    return events.Topics(f"{kafka_prefix}.")


@pytest.fixture
async def bus(topics: events.Topics, kafka_bus: KafkaBusFactory) -> KafkaEventBus:
    bus = await kafka_bus(timeout_s=10)
    await bus.ensure_topics(topics.specs([*chat_topics.ALL, *account_topics.ALL]))
    return bus


@pytest.fixture
async def infra(mysql_url: str, mysql_engine: AsyncEngine) -> AsyncIterator[Infra]:
    namespace = unique("index") + "_"
    settings = Settings(
        database=DatabaseConf(url=mysql_url),
        bus=BusConf(kind="kafka", bootstrap_servers=KAFKA_BOOTSTRAP),
        search=SearchConf(kind="opensearch", url=OPENSEARCH_URL, namespace=namespace, replicas=0),
    )
    infra = Infra(settings)
    yield infra
    await infra.close()
    await drop_namespace(namespace)


@pytest.fixture
async def job(infra: Infra, topics: events.Topics, mysql_engine: AsyncEngine) -> AsyncIterator[OrderedConsumer]:
    await SQLUserRepo(mysql_engine).create(Account(ADA, "not a hash", banned=False, tokens_valid_after_ms=0))
    consumer = await index_consumer(
        infra,
        ConsumerMetrics(CollectorRegistry()),
        topics=topics,
        options=ConsumerOptions(batch_linger_s=0.05, commit_interval_s=0.2, transient=(SearchUnavailable,)),
    )
    await consumer.start()
    yield consumer
    await consumer.stop()


def message(message_id: int, text: str, at_ms: int) -> Message:
    return Message(message_id, 42, message_id, ADA.id, f"c{message_id}", text, at_ms)


async def hits(search: SearchIndex, text: str) -> list[MessageHit]:
    return (await search.search_messages(MessageQuery(text, [42]))).items


async def until(search: SearchIndex, text: str, wanted: list[int]) -> list[MessageHit]:
    """The hits for ``text`` once they are ``wanted`` (the index refreshes about once a second)."""
    async with asyncio.timeout(30):
        while True:
            found = await hits(search, text)
            if [hit.doc.id for hit in found] == wanted:
                return found
            await asyncio.sleep(0.1)


async def test_sent_messages_are_searchable_recalls_remove_them_and_replays_keep_them_removed(
    job: OrderedConsumer, bus: KafkaEventBus, topics: events.Topics, infra: Infra
) -> None:
    search = await infra.search()
    chat = BusEventPublisher(bus, topics)
    sent = message(1, "我们明天说你好世界 at the harbour", T0 + 1)
    await chat.message_sent([(sent, contextvars.copy_context())])
    (hit,) = await until(search, "你好世界", [1])
    assert hit.doc.sender_name == "Ada"
    assert [sent.text[start:end] for start, end in hit.highlights] == ["你好世界"]

    await chat.message_recalled(sent, ADA.id, T0 + 60_000, "")
    await until(search, "harbour", [])

    # The send again (a replay), then a marker behind it in the same conversation: once the marker is found, the
    # replay has been handled too.
    marker = message(2, "marker harbour", T0 + 2)
    await chat.message_sent([(sent, contextvars.copy_context()), (marker, contextvars.copy_context())])
    await until(search, "marker", [2])
    assert [hit.doc.id for hit in await hits(search, "harbour")] == [2]


async def test_a_rename_reaches_the_senders_messages_and_the_user_index(
    job: OrderedConsumer, bus: KafkaEventBus, topics: events.Topics, infra: Infra
) -> None:
    search = await infra.search()
    await BusEventPublisher(bus, topics).message_sent(
        [(message(1, "lunch at noon", T0 + 1), contextvars.copy_context())]
    )
    await until(search, "lunch", [1])
    renamed = User(ADA.id, ADA.username, "Ada Lovelace", "", "", T0)
    await BusUserEvents(bus, topics).user_updated(renamed, T0 + 5_000)
    async with asyncio.timeout(30):
        while [hit.doc.sender_name for hit in await hits(search, "lunch")] != ["Ada Lovelace"]:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        while [user.id for user in await search.search_users("lovel", 10)] != [ADA.id]:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
