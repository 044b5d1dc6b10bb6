from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contracts.bus import BusFactory, EventBusContract, read
from tidings.pkg.bus import EventBus, GroupBusy, TopicSpec, UnknownTopic
from tidings.pkg.bus.embedded import EmbeddedLog
from tidings.pkg.bus.partitioner import partition_for


class TestEmbeddedLog(EventBusContract):
    @pytest.fixture
    async def bus_factory(self, tmp_path: Path) -> AsyncIterator[BusFactory]:
        opened: list[EventBus] = []

        async def open_log() -> EventBus:
            log = EmbeddedLog(tmp_path / "events.db", timeout_s=5)
            await log.start()
            opened.append(log)
            return log

        yield open_log
        for log in opened:
            await log.close()


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    # A poll interval far beyond any test: only the in-process wake-up can end a wait early.
    log = EmbeddedLog(tmp_path / "events.db", timeout_s=5, poll_interval_s=60)
    await log.start()
    yield log
    await log.close()


@pytest.mark.parametrize(
    ("key", "partition"),
    # Kafka's Java partitioner on 1000 partitions (the vectors kafka-python checks itself against).
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partition_for_matches_the_java_client(key: bytes, partition: int) -> None:
    assert partition_for(key, 1000) == partition


async def test_a_poll_in_the_same_process_wakes_up_on_publish(log: EmbeddedLog) -> None:
    await log.ensure_topics([TopicSpec("woken", 2)])
    subscription = await log.subscribe("g", ["woken"])
    waiting = asyncio.create_task(subscription.poll(10, timeout_s=120))
    await asyncio.sleep(0)  # let the poll start waiting before the publish
    await log.publish("woken", b"k", b"now")
    async with asyncio.timeout(5):
        (record,) = await waiting
    assert record.value == b"now"
    await subscription.close()


async def test_a_group_has_one_member_at_a_time(log: EmbeddedLog) -> None:
    await log.ensure_topics([TopicSpec("solo", 1)])
    first = await log.subscribe("g", ["solo"])
    with pytest.raises(GroupBusy):
        await log.subscribe("g", ["solo"])
    await first.close()
    second = await log.subscribe("g", ["solo"])
    assert second.assignment() == first.assignment()
    await second.close()


async def test_publishing_to_a_missing_topic_fails_and_stores_nothing(log: EmbeddedLog) -> None:
    with pytest.raises(UnknownTopic):
        await log.publish("missing", b"k", b"v")
    await log.ensure_topics([TopicSpec("missing", 1)])
    subscription = await log.subscribe("g", ["missing"])
    assert await subscription.poll(10, timeout_s=0) == []
    await subscription.close()


async def test_a_paused_partition_is_skipped_until_resumed(log: EmbeddedLog) -> None:
    await log.ensure_topics([TopicSpec("paused", 1)])
    await log.publish("paused", b"k", b"v")
    subscription = await log.subscribe("g", ["paused"])
    subscription.pause(subscription.assignment())
    assert await subscription.poll(10, timeout_s=0) == []
    subscription.resume(subscription.assignment())
    (record,) = await read(subscription, 1)
    assert subscription.highwater(record.topic_partition) == 1
    await subscription.close()


async def test_two_processes_on_one_file_hand_out_distinct_offsets(tmp_path: Path) -> None:
    # Two logs on one file stand for two processes: offsets come from the file, not from memory.
    first, second = EmbeddedLog(tmp_path / "shared.db"), EmbeddedLog(tmp_path / "shared.db")
    await first.start()
    await second.start()
    try:
        await first.ensure_topics([TopicSpec("shared", 1)])
        positions = await asyncio.gather(
            *(bus.publish("shared", b"k", f"{n}".encode()) for n in range(20) for bus in (first, second))
        )
        assert sorted(offset for _, offset in positions) == list(range(40))
    finally:
        await first.close()
        await second.close()
