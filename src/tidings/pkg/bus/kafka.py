"""``KafkaEventBus``: the event bus on Apache Kafka through aiokafka.

Publishing uses the idempotent producer (which forces ``acks=all``), so a publish returns once every in-sync
replica has the record and a retried send is never stored twice. Consumers commit explicit offsets only
(``enable_auto_commit=False``) and a group without offsets starts at the earliest record. Topics are created by
``ensure_topics`` with the admin client, with the configured replication factor and ``min.insync.replicas`` (on a
cluster: 3 and 2, so a publish is acknowledged once two brokers have it); the brokers' automatic topic creation stays
off. Admin requests are asked again of another broker while the one they went to is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)

from tidings.pkg import metrics
from tidings.pkg.bus.ports import RebalanceListener
from tidings.pkg.bus.publishing import TracedPublisher
from tidings.pkg.bus.records import (
    BusError,
    CommitFailed,
    Event,
    Published,
    Record,
    TopicConflict,
    TopicPartition,
    TopicSpec,
    UnknownTopic,
)

_UNKNOWN_TOPIC_OR_PARTITION = 3
_TOPIC_ALREADY_EXISTS = 36
# How long a topic may be unknown to one broker after another has it (see partition_count).
_TOPIC_PROPAGATION_S = 2.0


# Errors after which an idempotent producer stays broken: a batch expired while the broker was away, so the
# broker's and the producer's sequence numbers no longer agree. The Java client then takes a new producer id;
# aiokafka does not, so we replace the producer ourselves.
_PRODUCER_STATE_LOST = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


class KafkaEventBus(TracedPublisher):
    """``EventBus`` on Kafka: one idempotent producer and one admin client per process, a consumer per group."""

    # ``messaging.system`` of its spans.
    system = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout_s: float = 10.0,
        client_id: str = "tidings",
        linger_ms: int = 5,
        replication_factor: int = 1,
        min_insync_replicas: int | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._timeout_s = timeout_s
        self._client_id = client_id
        self._linger_ms = linger_ms
        insync = 1 if min_insync_replicas is None else min_insync_replicas
        if replication_factor < 1 or not 1 <= insync <= replication_factor:
            raise ValueError(
                f"replication factor {replication_factor} with min.insync.replicas {min_insync_replicas}:"
                " need 1 <= min.insync.replicas <= replication factor"
            )
        self._replication_factor = replication_factor
        # Set on each topic the bus creates; None leaves the brokers' default.
        self._topic_configs = {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._max_poll_interval_ms = max_poll_interval_ms
        self._producer: Any = None
        self._admin: Any = None
        self._round_trips = metrics.for_registry().round_trips.labels("kafka")

    @property
    def _timeout_ms(self) -> int:
        return int(self._timeout_s * 1000)

    def _new_producer(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            # Kafka 4's default: a few ms of batching costs little latency and saves many requests.
            linger_ms=self._linger_ms,
            # Also bounds how long a record may wait in the producer before its send fails.
            request_timeout_ms=self._timeout_ms,
        )

    async def _renew_producer(self) -> None:
        """Swap in a producer with a fresh producer id; the broken one is closed without waiting on it."""
        broken, fresh = self._producer, self._new_producer()
        async with asyncio.timeout(self._timeout_s):
            await fresh.start()
        self._producer = fresh
        if broken is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout_s):
                    await broken.stop()

    async def start(self) -> None:
        producer = self._new_producer()
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, request_timeout_ms=self._timeout_ms
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.start()
                await admin.start()
        except (KafkaError, TimeoutError) as exc:
            await self._stop_quietly(producer, admin)
            raise BusError(f"cannot reach kafka at {self._bootstrap}: {_describe(exc)}") from exc
        self._producer, self._admin = producer, admin

    async def close(self) -> None:
        producer, admin = self._producer, self._admin
        self._producer = self._admin = None
        await self._stop_quietly(producer, admin)

    async def _stop_quietly(self, producer: Any, admin: Any) -> None:
        async with asyncio.timeout(self._timeout_s):
            if producer is not None:
                # Flushes what is still buffered: a record handed to the producer is not dropped on a clean stop.
                await producer.stop()
            if admin is not None:
                await admin.close()

    async def _ask_admin(self, request: Callable[[], Awaitable[Any]]) -> Any:
        """An admin request, made again while it fails with a retriable error, under the caller's timeout.

        The admin client sends each request to a broker picked at random from the last metadata it read, which on a
        cluster may name a broker that has just died: the next attempt goes to another one."""
        while True:
            try:
                return await request()
            except KafkaError as exc:
                if not exc.retriable:
                    raise
            await asyncio.sleep(0.1)

    # -- topics ---------------------------------------------------------------------------------------------------

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        wanted = {spec.name: spec.partitions for spec in specs}
        async with asyncio.timeout(self._timeout_s):
            existing = set(await self._ask_admin(self.admin.list_topics))
            missing = [name for name in wanted if name not in existing]
            if missing:
                topics = [
                    NewTopic(name, wanted[name], self._replication_factor, topic_configs=self._topic_configs)
                    for name in missing
                ]
                # Asked again after a lost answer, a topic already made is TOPIC_ALREADY_EXISTS, accepted below.
                response = await self._ask_admin(lambda: self.admin.create_topics(topics))
                for error in response.to_object()["topic_errors"]:
                    # Another process creating the same topic at the same moment is fine; the count is checked below.
                    if error["error_code"] not in (0, _TOPIC_ALREADY_EXISTS):
                        raise BusError(f"cannot create topic {error['topic']}: {error['error_message']}")
            # Return only when every partition has a leader, so the first publish does not race the creation.
            while True:
                counts = await self._partition_counts(list(wanted), require_leaders=True)
                if counts is not None:
                    break
                await asyncio.sleep(0.1)
        for name, count in counts.items():
            if count != wanted[name]:
                raise TopicConflict(
                    f"topic {name} has {count} partitions, {wanted[name]} requested;"
                    " changing the count would move keys to other partitions"
                )

    async def partition_count(self, topic: str) -> int:
        # On a cluster, a broker learns of a topic created through another one a moment later (the news travels
        # through the controllers' metadata log), and the admin client asks any broker: a topic is missing only if
        # it stays missing that long.
        deadline = asyncio.get_running_loop().time() + _TOPIC_PROPAGATION_S
        while True:
            try:
                async with asyncio.timeout(self._timeout_s):
                    counts = await self._partition_counts([topic], require_leaders=False)
                break
            except UnknownTopic:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                await asyncio.sleep(0.1)
        assert counts is not None
        return counts[topic]

    async def _partition_counts(self, topics: list[str], *, require_leaders: bool) -> dict[str, int] | None:
        """Partition count per topic; ``None`` if leaders are required and some partition has none yet."""
        counts: dict[str, int] = {}
        for described in await self._ask_admin(lambda: self.admin.describe_topics(topics)):
            if described["error_code"] == _UNKNOWN_TOPIC_OR_PARTITION:
                if require_leaders:
                    return None
                raise UnknownTopic(f"topic {described['topic']} does not exist on kafka at {self._bootstrap}")
            partitions = described["partitions"]
            if require_leaders and (not partitions or any(p["error_code"] or p["leader"] < 0 for p in partitions)):
                return None
            counts[described["topic"]] = len(partitions)
        return counts

    # -- publishing -----------------------------------------------------------------------------------------------

    async def _publish_many(self, events: Sequence[Event]) -> list[Published]:
        # A timeout here does not withdraw records already handed to the producer: they may still be stored.
        # Callers retry, and the consumers are idempotent (the message path deduplicates on message_id).
        try:
            async with asyncio.timeout(self._timeout_s):
                # send() only queues the record (partitioned with murmur2); the producer batches each
                # partition's records into one request, in order.
                pending = [
                    await self.producer.send(event.topic, event.value, key=event.key, headers=list(event.headers))
                    for event in events
                ]
                stored = await asyncio.gather(*pending)
            # One batch: the producer sends the records of one publish together (and may join publishes).
            self._round_trips.inc()
        except TimeoutError:
            # The producer waits for a missing topic's metadata until the timeout: name the cause if that was it.
            for topic in {event.topic for event in events}:
                await self.partition_count(topic)
            raise BusError(f"publish to kafka at {self._bootstrap} timed out after {self._timeout_s}s") from None
        except KafkaError as exc:
            if isinstance(exc, _PRODUCER_STATE_LOST):
                # This publish failed and the caller retries it; the next one goes out on a sound producer.
                with contextlib.suppress(KafkaError, TimeoutError):
                    await self._renew_producer()
            raise BusError(f"publish to kafka failed: {_describe(exc)}") from exc
        return [Published(metadata.partition, metadata.offset) for metadata in stored]

    # -- consuming ------------------------------------------------------------------------------------------------

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        listener: RebalanceListener | None = None,
        *,
        fetch_wait_s: float = 0.0,
    ) -> KafkaSubscription:
        for topic in topics:
            await self.partition_count(topic)  # raises UnknownTopic rather than waiting for a topic forever
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            # Waiting: the broker holds a fetch until a full one (1 MiB) or the wait ran out. Not: it answers at
            # the first record (and an idle fetch after aiokafka's default 500 ms).
            **({"fetch_min_bytes": 1 << 20, "fetch_max_wait_ms": int(fetch_wait_s * 1000)} if fetch_wait_s > 0 else {}),
        )
        consumer.subscribe(topics=list(topics), listener=_Listener(listener) if listener is not None else None)
        try:
            async with asyncio.timeout(self._timeout_s):
                await consumer.start()
        except (KafkaError, TimeoutError) as exc:
            async with asyncio.timeout(self._timeout_s):
                await consumer.stop()
            raise BusError(f"group {group} cannot join on kafka at {self._bootstrap}: {_describe(exc)}") from exc
        return KafkaSubscription(consumer, group, self._timeout_s, self._round_trips)

    async def committed(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        async with asyncio.timeout(self._timeout_s):
            offsets = await self._ask_admin(lambda: self.admin.list_consumer_group_offsets(group))
        return {
            TopicPartition(tp.topic, tp.partition): meta.offset
            for tp, meta in offsets.items()
            if tp.topic in topics and meta.offset >= 0
        }

    async def offsets(self, topic: str) -> dict[TopicPartition, tuple[int, int]]:
        partitions = [KafkaTopicPartition(topic, p) for p in range(await self.partition_count(topic))]
        consumer = self._reader()
        try:
            async with asyncio.timeout(self._timeout_s):
                await consumer.start()
                starts = await consumer.beginning_offsets(partitions)
                ends = await consumer.end_offsets(partitions)
        except (KafkaError, TimeoutError) as exc:
            raise BusError(
                f"cannot read the offsets of {topic} on kafka at {self._bootstrap}: {_describe(exc)}"
            ) from exc
        finally:
            with contextlib.suppress(KafkaError, TimeoutError):
                async with asyncio.timeout(self._timeout_s):
                    await consumer.stop()
        return {TopicPartition(topic, tp.partition): (starts[tp], ends[tp]) for tp in partitions}

    def _reader(self) -> Any:
        """A consumer in no group: partitions assigned by hand, nothing committed, no member joining any group."""
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self._timeout_ms,
        )

    async def read_from_start(self, topic: str, *, max_records: int = 500) -> AsyncGenerator[list[Record], None]:
        partitions = [KafkaTopicPartition(topic, p) for p in range(await self.partition_count(topic))]
        consumer = self._reader()
        try:
            async with asyncio.timeout(self._timeout_s):
                await consumer.start()
                consumer.assign(partitions)
                ends = await consumer.end_offsets(partitions)
                await consumer.seek_to_beginning(*partitions)
                pending = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
            while pending:
                batches = await consumer.getmany(*pending, timeout_ms=self._timeout_ms, max_records=max_records)
                records = [
                    _record(message)
                    for tp, messages in batches.items()
                    for message in messages
                    if message.offset < ends[tp]
                ]
                async with asyncio.timeout(self._timeout_s):
                    reached = {tp for tp in pending if await consumer.position(tp) >= ends[tp]}
                if not records and not reached:
                    raise BusError(f"reading {topic} from the start got nothing for {self._timeout_s}s before its end")
                pending -= reached
                if records:
                    self._round_trips.inc()
                    yield records
        except (KafkaError, TimeoutError) as exc:
            raise BusError(f"cannot read {topic} on kafka at {self._bootstrap}: {_describe(exc)}") from exc
        finally:
            with contextlib.suppress(KafkaError, TimeoutError):
                async with asyncio.timeout(self._timeout_s):
                    await consumer.stop()

    @property
    def producer(self) -> Any:
        if self._producer is None:
            raise BusError("the kafka event bus is not started")
        return self._producer

    @property
    def admin(self) -> Any:
        if self._admin is None:
            raise BusError("the kafka event bus is not started")
        return self._admin


class KafkaSubscription:
    """``Subscription`` on an ``AIOKafkaConsumer`` in a consumer group."""

    def __init__(self, consumer: Any, group: str, timeout_s: float, round_trips: Any) -> None:
        self._consumer = consumer
        self._group = group
        self._timeout_s = timeout_s
        self._round_trips = round_trips

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        if batches:  # the records came in fetches made ahead of this poll: count one fetch per poll that got any
            self._round_trips.inc()
        return [_record(message) for messages in batches.values() for message in messages]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._consumer.commit({KafkaTopicPartition(*tp): offset for tp, offset in offsets.items()})
            self._round_trips.inc()
        except (CommitFailedError, IllegalStateError) as exc:
            raise CommitFailed(f"group {self._group} could not commit {dict(offsets)}: {_describe(exc)}") from exc
        except KafkaError as exc:
            raise BusError(f"group {self._group} could not commit: {_describe(exc)}") from exc

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment())

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.pause(*self._assigned(partitions))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.resume(*self._assigned(partitions))

    def highwater(self, partition: TopicPartition) -> int | None:
        if partition not in self.assignment():
            return None
        highwater: int | None = self._consumer.highwater(KafkaTopicPartition(*partition))
        return highwater

    async def close(self) -> None:
        async with asyncio.timeout(self._timeout_s):
            await self._consumer.stop()

    def _assigned(self, partitions: Iterable[TopicPartition]) -> list[Any]:
        # aiokafka refuses partitions that a rebalance has just taken away; those need no pausing anyway.
        assigned = self.assignment()
        return [KafkaTopicPartition(*tp) for tp in partitions if tp in assigned]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Passes aiokafka's rebalance callbacks on to our listener, in our partition type."""

    def __init__(self, listener: RebalanceListener) -> None:
        self._listener = listener

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self._listener.on_revoked(frozenset(TopicPartition(tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        await self._listener.on_assigned(frozenset(TopicPartition(tp.topic, tp.partition) for tp in assigned))


def _record(message: Any) -> Record:
    """Our record of an aiokafka ``ConsumerRecord``."""
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        # Records written by other producers may lack a key or a value (tombstones).
        key=message.key or b"",
        value=message.value or b"",
        headers=tuple(message.headers or ()),
        timestamp_ms=message.timestamp,
    )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
