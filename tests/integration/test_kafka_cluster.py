"""The event bus on a Kafka cluster of three brokers (``scripts/kafka-cluster``, which ``make test`` starts): the bus
contract holds as on one broker, ``tidings migrate`` with configs/cluster.yaml puts every topic on all three brokers
with two in sync, and a broker killed under load (SIGKILL, then started again) loses no acknowledged record, stores
none twice and keeps each key's order.

The fault test kills and starts a broker with the script, so it needs the cluster of this checkout; it always
leaves all three brokers running."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from tests.contracts.bus import BusFactory, EventBusContract, eventually
from tests.integration.conftest import KAFKA_CLUSTER_BOOTSTRAP, KafkaBusFactory
from tests.scripts import run_script
from tidings import conf
from tidings.cli import TOPICS
from tidings.pkg.bus import BusError, Event, Record, TopicSpec, events
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.factory import create_bus
from tidings.pkg.bus.metrics import ConsumerMetrics

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / ".stack" / "kafka-cluster"
BROKERS = (1, 2, 3)


class TestKafkaClusterEventBus(EventBusContract):
    @pytest.fixture
    def prefix(self, kafka_cluster_prefix: str) -> str:
        return kafka_cluster_prefix

    @pytest.fixture
    def bus_factory(self, kafka_cluster_bus: KafkaBusFactory) -> BusFactory:
        return kafka_cluster_bus


@pytest.fixture
async def admin() -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=KAFKA_CLUSTER_BOOTSTRAP, request_timeout_ms=10_000)
    async with asyncio.timeout(30):
        await client.start()
    yield client
    async with asyncio.timeout(30):
        await client.close()


async def partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
    """Each partition's metadata (``leader``, ``replicas``, ``isr``) as the cluster reports it."""
    async with asyncio.timeout(10):
        while True:
            try:
                described = await admin.describe_topics(topics)
                break
            except KafkaError as exc:
                # The admin client asks a broker at random, which may be the one just killed: ask another.
                if not exc.retriable:
                    raise
            await asyncio.sleep(0.1)
    return {(topic["topic"], p["partition"]): p for topic in described for p in topic["partitions"]}


async def wait_for_full_isr(admin: AIOKafkaAdminClient, topic: str, *, deadline_s: float) -> None:
    """Wait until every partition of ``topic`` has all three brokers in sync, or fail."""
    isr: dict[int, list[int]] = {}
    try:
        async with asyncio.timeout(deadline_s):
            while True:
                isr = {p: sorted(meta["isr"]) for (_, p), meta in (await partitions(admin, [topic])).items()}
                if isr and all(len(brokers) == len(BROKERS) for brokers in isr.values()):
                    return
                await asyncio.sleep(0.5)
    except TimeoutError:
        pytest.fail(f"the partitions of {topic} do not have every broker in sync after {deadline_s}s: {isr}")


def quorum_leader() -> int | None:
    """The active controller (the metadata quorum's leader), from the newest quorum state a broker wrote."""
    newest: tuple[int, int] | None = None
    for broker in BROKERS:
        path = CLUSTER_DIR / str(broker) / "data" / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if state.get("leaderId", -1) in BROKERS and (newest is None or state["leaderEpoch"] > newest[0]):
            newest = (state["leaderEpoch"], state["leaderId"])
    return None if newest is None else newest[1]


async def test_migrate_with_the_cluster_config_puts_every_topic_on_three_brokers_with_two_in_sync(
    kafka_cluster_prefix: str, admin: AIOKafkaAdminClient
) -> None:
    # What `tidings migrate --config configs/cluster.yaml` does for the bus, in a namespace of this test's own.
    settings = conf.load(ROOT / "configs" / "cluster.yaml")
    bus_conf = settings.bus.model_copy(
        update={"namespace": f"{kafka_cluster_prefix}.", "bootstrap_servers": KAFKA_CLUSTER_BOOTSTRAP}
    )
    bus = create_bus(bus_conf)
    await bus.start()
    try:
        specs = events.Topics(bus_conf.namespace).specs(TOPICS)
        await bus.ensure_topics(specs)
    finally:
        await bus.close()

    names = [spec.name for spec in specs]
    described = await partitions(admin, names)
    assert {topic for topic, _ in described} == set(names)
    assert {key: sorted(meta["replicas"]) for key, meta in described.items()} == {
        key: list(BROKERS) for key in described
    }
    async with asyncio.timeout(10):
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {"min.insync.replicas": None}) for name in names]
        )
    insync = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}.get("min.insync.replicas")
        for response in responses
        for resource in response.resources
    }
    assert insync == dict.fromkeys(names, "2")


KEYS = [f"conversation-{k}" for k in range(20)]
# Four publishers of five keys each (a key's records are published one after another, so its order is defined),
# each publishing its keys every 50 ms once the last publish returned: a few hundred records/s, fewer while a
# publish waits for a new leader.
PUBLISHERS = 4
TICK_S = 0.05


@pytest.mark.timeout(300)
async def test_a_broker_killed_under_load_loses_no_acknowledged_record_stores_none_twice_and_keeps_order(
    kafka_cluster_bus: KafkaBusFactory, kafka_cluster_prefix: str, admin: AIOKafkaAdminClient
) -> None:
    topic, group = f"{kafka_cluster_prefix}.sent", f"{kafka_cluster_prefix}.persist"
    publisher, consumer_bus = await kafka_cluster_bus(), await kafka_cluster_bus()
    await publisher.ensure_topics([TopicSpec(topic, 6)])
    await wait_for_full_isr(admin, topic, deadline_s=60)

    handled: list[tuple[str, int]] = []

    async def handle(records: list[Record]) -> None:
        for record in records:
            key, n = record.value.decode().rsplit(":", 1)
            handled.append((key, int(n)))

    consumer = OrderedConsumer(
        consumer_bus,
        group=group,
        topics=[topic],
        handler=handle,
        metrics=ConsumerMetrics(CollectorRegistry()),
        options=ConsumerOptions(workers=4, commit_interval_s=0.2),
    )
    await consumer.start()
    try:
        # A publish that returned is acknowledged: each of its records must be consumed and stored once. One that
        # failed is not retried (a retry by the caller is a new record): its records may be stored once or not at all.
        acked: set[tuple[str, int]] = set()
        failed: list[str] = []
        stopping = asyncio.Event()

        async def produce(keys: list[str]) -> None:
            n = 0
            while not stopping.is_set():
                try:
                    await publisher.publish_many([Event(topic, key.encode(), f"{key}:{n}".encode()) for key in keys])
                    acked.update((key, n) for key in keys)
                except BusError as exc:
                    failed.append(f"{keys[0]}..{keys[-1]} {n}: {exc}")
                n += 1
                await asyncio.sleep(TICK_S)

        started = asyncio.get_running_loop().time()
        producing = asyncio.gather(*(produce(KEYS[i::PUBLISHERS]) for i in range(PUBLISHERS)))
        victim: int | None = None
        led: list[int] = []
        try:
            await eventually(lambda: len(handled) >= 1000, "the group consumes before the kill")
            # The active controller, so that the quorum elects another while partitions move; else a partition leader.
            leaders = {p: meta["leader"] for (_, p), meta in (await partitions(admin, [topic])).items()}
            controller = quorum_leader()
            victim = controller if controller in leaders.values() else leaders[0]
            led = sorted(p for p, leader in leaders.items() if leader == victim)
            await run_script("kafka-cluster", "kill", str(victim))
            at_kill = len(acked)
            # Down long enough to be fenced (6 s without a heartbeat) and for its partitions to get new leaders.
            await asyncio.sleep(8)
            await eventually(
                lambda: len(acked) >= at_kill + 1000, "publishes acknowledged with a broker down", deadline_s=30
            )
            down = await partitions(admin, [topic])
            await run_script("kafka-cluster", "start", str(victim))
            at_start = len(acked)
            await eventually(
                lambda: len(acked) >= at_start + 1000, "publishes acknowledged after the restart", deadline_s=30
            )
        finally:
            stopping.set()
            async with asyncio.timeout(30):
                await producing
            elapsed_s = asyncio.get_running_loop().time() - started
            # Whatever happened, all three brokers run again for the next test.
            if victim is not None:
                await run_script("kafka-cluster", "start", str(victim))

        # While it was down, the victim led nothing and was in no ISR; two replicas kept accepting writes.
        assert led, f"broker {victim} led no partition of {topic}"
        assert all(meta["leader"] != victim and victim not in meta["isr"] for meta in down.values()), down
        await eventually(lambda: acked <= set(handled), "every acknowledged record consumed", deadline_s=90)
        await wait_for_full_isr(admin, topic, deadline_s=60)

        # The log: every acknowledged record once; nothing twice (the idempotent producer's retries stored nothing
        # again); each key's records in publish order.
        stored: list[tuple[str, int]] = []
        async with asyncio.timeout(60):
            async for batch in publisher.read_from_start(topic):
                stored.extend((key, int(n)) for key, n in (r.value.decode().rsplit(":", 1) for r in batch))
        twice = {record: count for record, count in Counter(stored).items() if count > 1}
        assert not twice, f"stored more than once: {sorted(twice)[:10]}"
        lost = acked - set(stored)
        assert not lost, f"{len(lost)} acknowledged records not stored: {sorted(lost)[:10]}"
        stored_order: dict[str, list[int]] = defaultdict(list)
        for key, n in stored:
            stored_order[key].append(n)
        assert all(ns == sorted(ns) for ns in stored_order.values()), "a key's records are stored out of order"

        # The consumer: after dropping redeliveries (the handler is idempotent), each key in publish order.
        first_seen: dict[str, list[int]] = defaultdict(list)
        seen: set[tuple[str, int]] = set()
        for key, n in handled:
            if (key, n) not in seen:
                seen.add((key, n))
                first_seen[key].append(n)
        assert first_seen == stored_order
        # Not a threshold: shown with -rA to say how much of the load the fault cost.
        print(
            f"broker {victim} ({'the active controller, ' if victim == controller else ''}leader of partitions {led})"
            f" killed and started again: {len(acked)} records acknowledged"
            f" in {elapsed_s:.1f}s, {len(failed)} publishes failed, {len(stored)} records stored"
        )
        for line in failed[:5]:
            print(f"  failed publish {line}")
    finally:
        await consumer.stop()
