"""The persist job on Kafka, MariaDB and Redis: a job process killed mid-stream (SIGKILL, no goodbye) loses
nothing and stores nothing twice once a new one takes over; Redis gets the persisted max seq and a recent window."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import sys

import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.conftest import KAFKA_BOOTSTRAP, REDIS_URL, KafkaBusFactory
from tidings.api.chat.v1 import chat_pb2
from tidings.bootstrap import Infra
from tidings.conf import Settings
from tidings.job.biz.errors import TRANSIENT
from tidings.job.data.telemetry import PersistTelemetry
from tidings.job.wire import persist_consumer
from tidings.pkg.bus import events
from tidings.pkg.bus.consumer import ConsumerOptions
from tidings.pkg.bus.kafka import KafkaEventBus
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.conf import BusConf, CacheConf, DatabaseConf
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.biz.model import Conversation, Kind
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.data.publisher import BusEventPublisher
from tidings.service.chat.message import Message
from tidings.service.chat.store.history import RedisHistoryCache
from tidings.service.chat.tables import messages

# A persist job process on the test's database, topics and Redis namespace; it runs until it is killed.
JOB = """
import asyncio, sys
from prometheus_client import CollectorRegistry
from tidings.job.data.telemetry import PersistTelemetry
from tidings.job.biz.errors import TRANSIENT
from tidings.job.wire import persist_consumer
from tidings.pkg.bus import events
from tidings.pkg.bus.consumer import ConsumerOptions
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.conf import BusConf, CacheConf, DatabaseConf
from tidings.conf import Settings
from tidings.bootstrap import Infra

async def main(mysql_url, kafka, redis_url, topic_prefix, redis_prefix):
    settings = Settings(database=DatabaseConf(url=mysql_url), cache=CacheConf(url=redis_url),
                        bus=BusConf(kind="kafka", bootstrap_servers=kafka))
    infra = Infra(settings)
    registry = CollectorRegistry()
    options = ConsumerOptions(transient=TRANSIENT, commit_interval_s=0.5, batch_size=50)
    consumer = await persist_consumer(infra, ConsumerMetrics(registry), PersistTelemetry(registry),
                                      topics=events.Topics(topic_prefix), redis_prefix=redis_prefix,
                                      options=options)
    await consumer.start()
    print("started", file=sys.stderr, flush=True)
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture
def topics(kafka_prefix: str) -> events.Topics:
    """Chat's topics in the test's namespace (``kafka_prefix`` deletes them afterwards)."""
    return events.Topics(f"{kafka_prefix}.")


@pytest.fixture
async def bus(topics: events.Topics, kafka_bus: KafkaBusFactory) -> KafkaEventBus:
    """A producer on the test's chat topics, created up front."""
    bus = await kafka_bus(timeout_s=10)
    await bus.ensure_topics(topics.specs(chat_topics.ALL))
    return bus


async def conversations(engine: AsyncEngine, count: int) -> list[int]:
    ids = [10_000 + n for n in range(count)]
    for cid in ids:
        await SQLConversationRepo(engine).create(Conversation(cid, Kind.GROUP, "t", 1, 0, None, 0, 0, 0), [])
    return ids


def message(cid: int, seq: int) -> Message:
    return Message(cid * 1_000_000 + seq, cid, seq, 1, f"{cid}-{seq}", f"text {seq}", 1_800_000_000_000 + seq)


async def stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(messages)) or 0)


async def start_job(mysql_url: str, topics: events.Topics, redis_prefix: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        JOB,
        mysql_url,
        KAFKA_BOOTSTRAP,
        REDIS_URL,
        topics.prefix,
        redis_prefix,
        # Logs go to stdout; the process says "started" (or why it could not) on stderr.
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    said = await asyncio.wait_for(process.stderr.read(4096), timeout=60)
    assert said.strip() == b"started", f"the job process did not start: {said.decode(errors='replace')}"
    return process


async def test_a_job_killed_mid_stream_loses_and_doubles_nothing(
    mysql_url: str, mysql_engine: AsyncEngine, bus: KafkaEventBus, topics: events.Topics, redis_prefix: str
) -> None:
    ids = await conversations(mysql_engine, 6)
    publisher = BusEventPublisher(bus, topics)
    per_conversation = 300
    sent = [message(cid, seq) for seq in range(1, per_conversation + 1) for cid in ids]
    first = await start_job(mysql_url, topics, redis_prefix)
    replacement: asyncio.subprocess.Process | None = None
    try:
        for start in range(0, len(sent), 100):
            await publisher.message_sent([(m, contextvars.copy_context()) for m in sent[start : start + 100]])
        # Somewhere in the middle: some batches written, others in flight or not yet fetched.
        async with asyncio.timeout(60):
            while await stored(mysql_engine) < len(sent) // 4:  # noqa: ASYNC110 - the job announces nothing
                await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        replacement = await start_job(mysql_url, topics, redis_prefix)
        async with asyncio.timeout(120):
            while await stored(mysql_engine) < len(sent):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # anything stored twice would show now
        assert await stored(mysql_engine) == len(sent)
        repo = SQLMessageRepo(mysql_engine)
        for cid in ids:
            history = await repo.after(cid, 0, per_conversation + 10)
            assert history == [m for m in sent if m.conversation_id == cid]
            conversation = await SQLConversationRepo(mysql_engine).get(cid)
            assert conversation is not None
            assert conversation.max_seq == per_conversation
    finally:
        for process in (first, replacement):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()


async def test_redis_gets_the_persisted_max_seq_and_a_recent_window(
    mysql_url: str,
    mysql_engine: AsyncEngine,
    bus: KafkaEventBus,
    topics: events.Topics,
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    settings = Settings(
        database=DatabaseConf(url=mysql_url),
        cache=CacheConf(url=REDIS_URL),
        bus=BusConf(kind="kafka", bootstrap_servers=KAFKA_BOOTSTRAP),
    )
    infra = Infra(settings)
    registry = CollectorRegistry()
    consumer = await persist_consumer(
        infra,
        ConsumerMetrics(registry),
        PersistTelemetry(registry),
        topics=topics,
        redis_prefix=redis_prefix,
        options=ConsumerOptions(transient=TRANSIENT, commit_interval_s=0.2),
    )
    await consumer.start()
    try:
        [cid] = await conversations(mysql_engine, 1)
        sent = [message(cid, seq) for seq in range(1, 81)]
        await BusEventPublisher(bus, topics).message_sent([(m, contextvars.copy_context()) for m in sent])
        cache = RedisHistoryCache(redis_client, prefix=redis_prefix, window=50)
        async with asyncio.timeout(60):
            while await cache.max_seq(cid) != 80:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        window = [chat_pb2.Message.FromString(raw) for raw in await cache.recent(cid)]
        assert [m.seq for m in window] == list(range(31, 81))
        # A redelivered older batch moves nothing back.
        await cache.record(sent[:10])
        assert await cache.max_seq(cid) == 80
    finally:
        await consumer.stop()
        await infra.close()
