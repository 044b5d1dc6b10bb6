"""``OrderedConsumer`` on the embedded log: order per key, no commit past unhandled work, redelivery, dead letters."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.contracts.bus import eventually, read
from tidings.pkg.bus import Event, Published, Record, TopicSpec
from tidings.pkg.bus.consumer import ConsumerOptions, Handler, OrderedConsumer, UnknownEventVersion
from tidings.pkg.bus.deadletter import dead_letter_topic
from tidings.pkg.bus.embedded import EmbeddedLog
from tidings.pkg.bus.metrics import ConsumerMetrics

TOPIC = "chat.message.sent"
GROUP = "persist"


class Harness:
    """An embedded log on a file that outlives restarts, and consumers on it with their own registries."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log = EmbeddedLog(path, timeout_s=5)
        self.registry = CollectorRegistry()
        self.consumers: list[OrderedConsumer] = []

    async def restart_log(self) -> None:
        await self.log.close()
        self.log = EmbeddedLog(self.path, timeout_s=5)
        await self.log.start()

    def consumer(self, handler: Handler, **options: Any) -> OrderedConsumer:
        settings: dict[str, Any] = {"commit_interval_s": 0.02, "backoff_initial_s": 0.001, "backoff_max_s": 0.01}
        settings.update(options)
        self.registry = CollectorRegistry()
        consumer = OrderedConsumer(
            self.log,
            group=GROUP,
            topics=[TOPIC],
            handler=handler,
            metrics=ConsumerMetrics(self.registry),
            options=ConsumerOptions(**settings),
        )
        self.consumers.append(consumer)
        return consumer

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def committed(self) -> dict[int, int]:
        return {tp.partition: offset for tp, offset in (await self.log.committed(GROUP, [TOPIC])).items()}

    async def dead_letters(self, count: int) -> list[Record]:
        subscription = await self.log.subscribe("inspect", [dead_letter_topic(TOPIC)])
        try:
            return await read(subscription, count, deadline_s=10)
        finally:
            await subscription.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path / "events.db")
    await harness.log.start()
    yield harness
    for consumer in harness.consumers:
        await consumer.stop()
    await harness.log.close()


async def committed_becomes(harness: Harness, expected: dict[int, int], *, deadline_s: float = 20.0) -> None:
    last: dict[int, int] = {}
    try:
        async with asyncio.timeout(deadline_s):
            while last != expected:
                last = await harness.committed()
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"committed offsets {last}, expected {expected}")


def ends(positions: list[Published]) -> dict[int, int]:
    """The end offset of each partition that received something."""
    result: dict[int, int] = {}
    for partition, offset in positions:
        result[partition] = max(result.get(partition, 0), offset + 1)
    return result


def event(key: str, n: int, *, version: bytes = b"1") -> Event:
    return Event(TOPIC, key.encode(), f"{key}:{n}".encode(), (("schema-version", version),))


def parse(record: Record) -> tuple[str, int]:
    key, n = record.value.decode().rsplit(":", 1)
    return key, int(n)


async def test_each_key_is_handled_in_order_while_keys_run_in_parallel(harness: Harness) -> None:
    await harness.log.ensure_topics([TopicSpec(TOPIC, 4)])
    keys = [f"conversation-{k}" for k in range(40)]
    positions = await harness.log.publish_many([event(key, n) for n in range(25) for key in keys])
    seen: dict[str, list[int]] = defaultdict(list)
    running = peak = 0

    async def handle(records: list[Record]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(random.uniform(0, 0.003))
        for record in records:
            key, n = parse(record)
            seen[key].append(n)
        running -= 1

    consumer = harness.consumer(handle, workers=8, batch_size=7)
    await consumer.start()
    await eventually(lambda: sum(map(len, seen.values())) >= 1000, "all 1000 records handled")
    await consumer.stop()
    assert {key: seen[key] for key in keys} == {key: list(range(25)) for key in keys}
    assert peak > 1, "keys should be handled by several workers at once"
    assert await harness.committed() == ends(positions)
    assert harness.metric("tidings_bus_consumer_records_total", topic=TOPIC, group=GROUP, outcome="handled") == 1000


async def test_offsets_are_never_committed_past_an_unhandled_record(harness: Harness) -> None:
    await harness.log.ensure_topics([TopicSpec(TOPIC, 1)])
    # Offsets 0-4: key C; 5: key A (slow); 6-25: twenty keys B, most of them on other workers than A.
    await harness.log.publish_many(
        [event("C", n) for n in range(5)] + [event("A", 0)] + [event(f"B{n}", 0) for n in range(20)]
    )
    release_a = asyncio.Event()
    handled: set[str] = set()

    async def handle(records: list[Record]) -> None:
        for record in records:
            key, _ = parse(record)
            if key == "A":
                await release_a.wait()
            handled.add(key)

    consumer = harness.consumer(handle, workers=8)
    await consumer.start()
    await eventually(lambda: len({key for key in handled if key.startswith("B")}) >= 10, "most B records handled")
    b_done_at = time.monotonic()
    # A commit pass has run since the B records were handled: the commit age was reset after that moment.
    await eventually(
        lambda: harness.metric("tidings_bus_consumer_commit_age_seconds", group=GROUP) < time.monotonic() - b_done_at,
        "a commit pass after the B records",
    )
    assert await harness.committed() == {0: 5}, "the commit must stop at A's offset while A is unhandled"
    release_a.set()
    await eventually(lambda: len(handled) == 22, "every key handled")
    await committed_becomes(harness, {0: 26})


async def test_a_restart_after_stopping_mid_record_redelivers_only_what_was_not_committed(harness: Harness) -> None:
    await harness.log.ensure_topics([TopicSpec(TOPIC, 1)])
    keys = [f"k{n}" for n in range(6)]
    await harness.log.publish_many([event(key, n) for n in range(5) for key in keys])  # offsets 0-29
    stuck_offset = 12
    acknowledged: list[int] = []
    never = asyncio.Event()

    async def hang_on_one(records: list[Record]) -> None:
        if any(record.offset == stuck_offset for record in records):
            await never.wait()  # the process "dies" while handling this record
        acknowledged.extend(record.offset for record in records)

    # One record per batch, so exactly the records before the stuck one on its worker were acknowledged.
    crashed = harness.consumer(hang_on_one, drain_timeout_s=0.2, batch_size=1)
    await crashed.start()
    await eventually(lambda: max(acknowledged, default=0) > stuck_offset, "records past the stuck one handled")
    await crashed.stop()
    assert await harness.committed() == {0: stuck_offset}
    assert set(range(stuck_offset)) <= set(acknowledged)
    assert stuck_offset not in acknowledged

    await harness.restart_log()
    second_run: list[int] = []

    async def handle(records: list[Record]) -> None:
        second_run.extend(record.offset for record in records)

    restarted = harness.consumer(handle)
    await restarted.start()
    await eventually(lambda: 29 in second_run, "the last record handled after the restart")
    await restarted.stop()
    assert sorted(second_run) == list(range(stuck_offset, 30)), "only uncommitted records come again"
    assert set(acknowledged) | set(second_run) == set(range(30)), "nothing is lost"
    assert await harness.committed() == {0: 30}


async def test_a_poison_record_is_dead_lettered_after_its_retries_and_the_rest_goes_on(harness: Harness) -> None:
    await harness.log.ensure_topics([TopicSpec(TOPIC, 2)])
    positions = await harness.log.publish_many(
        [event("A", 0), event("A", 1), event("B", 0), event("A", 2), event("B", 1), event("A", 3)]
    )
    poison = b"A:1"
    alone_attempts = 0
    handled: list[tuple[str, int]] = []

    async def handle(records: list[Record]) -> None:
        nonlocal alone_attempts
        if any(record.value == poison for record in records):
            alone_attempts += len(records) == 1
            raise ValueError("cannot parse A:1")
        handled.extend(parse(record) for record in records)

    consumer = harness.consumer(handle, max_attempts=3)
    await consumer.start()
    (dead,) = await harness.dead_letters(1)
    await eventually(lambda: len(handled) == 5, "the other five records handled")
    assert alone_attempts == 3
    assert [n for key, n in handled if key == "A"] == [0, 2, 3]
    assert [n for key, n in handled if key == "B"] == [0, 1]
    assert dead.value == poison
    assert dead.key == b"A"
    headers = dict(dead.headers)
    assert headers["schema-version"] == b"1"
    assert headers["dlq.topic"] == TOPIC.encode()
    assert int(headers["dlq.offset"]) >= 0
    assert headers["dlq.group"] == GROUP.encode()
    assert headers["dlq.reason"] == b"handler_error"
    assert headers["dlq.error.type"] == b"ValueError"
    assert headers["dlq.error.message"] == b"cannot parse A:1"
    assert (
        harness.metric("tidings_bus_consumer_dead_letters_total", topic=TOPIC, group=GROUP, reason="handler_error") == 1
    )
    await committed_becomes(harness, ends(positions))


async def test_an_unknown_event_version_is_dead_lettered_at_once(harness: Harness) -> None:
    await harness.log.ensure_topics([TopicSpec(TOPIC, 1)])
    await harness.log.publish_many([event("A", 0), event("A", 1, version=b"99"), event("A", 2)])
    calls_with_v99 = 0
    handled: list[int] = []

    async def handle(records: list[Record]) -> None:
        nonlocal calls_with_v99
        for record in records:
            if record.header("schema-version") != b"1":
                calls_with_v99 += 1
                raise UnknownEventVersion(record, f"schema-version {record.header('schema-version')!r}")
        handled.extend(parse(record)[1] for record in records)

    consumer = harness.consumer(handle, max_attempts=5)
    await consumer.start()
    (dead,) = await harness.dead_letters(1)
    await eventually(lambda: 2 in handled, "the record after the unknown one handled")
    assert calls_with_v99 == 1, "an unknown version is not retried"
    assert 0 in handled
    assert 1 not in handled
    assert dict(dead.headers)["dlq.reason"] == b"unknown_version"
    assert (
        harness.metric("tidings_bus_consumer_dead_letters_total", topic=TOPIC, group=GROUP, reason="unknown_version")
        == 1
    )


async def test_full_queues_pause_fetching_until_workers_catch_up(harness: Harness) -> None:
    await harness.log.ensure_topics([TopicSpec(TOPIC, 1)])
    await harness.log.publish_many([event("A", n) for n in range(200)])
    gate = asyncio.Event()
    handled: list[int] = []

    async def handle(records: list[Record]) -> None:
        await gate.wait()
        handled.extend(parse(record)[1] for record in records)

    consumer = harness.consumer(handle, workers=2, queue_size=10, max_poll_records=20, batch_size=5)
    await consumer.start()
    await eventually(lambda: harness.metric("tidings_bus_consumer_paused", group=GROUP) == 1, "fetching paused")
    gate.set()
    await eventually(lambda: len(handled) == 200, "every record handled after the pause")
    assert handled == list(range(200))
    await eventually(lambda: harness.metric("tidings_bus_consumer_paused", group=GROUP) == 0, "fetching resumed")
    await eventually(
        lambda: (
            harness.metric("tidings_bus_consumer_lag", topic=TOPIC, partition="0", group=GROUP) == 0
            and harness.metric("tidings_bus_consumer_batch_duration_seconds_count", group=GROUP, result="ok") > 0
        ),
        "lag reported as zero once caught up",
    )
