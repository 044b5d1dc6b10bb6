"""``EmbeddedLog``: the event bus of ``tidings dev``, a durable log with Kafka semantics in one SQLite file.

Written by hand because no library offers Kafka's model (topics of N partitions, murmur2 keys -> partitions,
offsets from 0, consumer groups with committed offsets) on an embedded store. A publish is durable when its
transaction commits (WAL, ``synchronous=NORMAL``: it survives a crash of the process, as a one-broker Kafka does).
Pollers in this process are woken by an ``asyncio.Event`` within milliseconds; writes from another process are
seen within ``poll_interval_s``. A consumer group has one member (one process runs everything in dev mode), so
that member is assigned every partition; a second member in the same process is refused with ``GroupBusy``.
Records are kept for good (no retention): a development log stays small.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.pkg import db
from tidings.pkg.bus.embedded import schema
from tidings.pkg.bus.embedded.subscription import EmbeddedSubscription
from tidings.pkg.bus.partitioner import partition_for
from tidings.pkg.bus.ports import RebalanceListener
from tidings.pkg.bus.publishing import TracedPublisher
from tidings.pkg.bus.records import (
    BusError,
    Event,
    GroupBusy,
    Published,
    Record,
    TopicConflict,
    TopicPartition,
    TopicSpec,
    UnknownTopic,
)
from tidings.pkg.clock import wall_ms
from tidings.pkg.conf import DatabaseConf


class EmbeddedLog(TracedPublisher):
    """``EventBus`` on a SQLite file of its own (``BusConf.path``)."""

    # ``messaging.system`` of its spans.
    system = "tidings.embedded"

    def __init__(
        self,
        path: str | Path,
        *,
        timeout_s: float = 10.0,
        poll_interval_s: float = 0.2,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._path = Path(path)
        self._timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self._clock_ms = clock_ms
        self._engine: AsyncEngine | None = None
        # Topics never change their partition count (ensure_topics refuses), so the count can be cached.
        self._partition_counts: dict[str, int] = {}
        # SQLite has one writer at a time; queueing writers here avoids its sleeping busy handler.
        self._write_lock = asyncio.Lock()
        self._appended = asyncio.Event()
        self._members: set[str] = set()

    @property
    def path(self) -> Path:
        return self._path

    async def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        engine = db.create_engine(
            DatabaseConf(url=f"sqlite+aiosqlite:///{self._path}", connect_timeout_s=self._timeout_s)
        )
        try:
            async with asyncio.timeout(self._timeout_s), engine.begin() as conn:
                await conn.run_sync(schema.metadata.create_all)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        self._wake()
        if engine is not None:
            await engine.dispose()

    # -- topics ---------------------------------------------------------------------------------------------------

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        async with self._write_lock, asyncio.timeout(self._timeout_s), self.engine.begin() as conn:
            for spec in specs:
                # Insert first (a write takes the lock), then read what is there: a racing creator cannot slip in.
                await conn.execute(
                    sqlite_insert(schema.topics)
                    .values(name=spec.name, partitions=spec.partitions)
                    .on_conflict_do_nothing()
                )
                existing = (
                    await conn.execute(select(schema.topics.c.partitions).where(schema.topics.c.name == spec.name))
                ).scalar_one()
                if existing != spec.partitions:
                    raise TopicConflict(
                        f"topic {spec.name} has {existing} partitions, {spec.partitions} requested;"
                        " changing the count would move keys to other partitions"
                    )
                await conn.execute(
                    sqlite_insert(schema.partitions)
                    .values([{"topic": spec.name, "partition": p, "next_offset": 0} for p in range(spec.partitions)])
                    .on_conflict_do_nothing()
                )
        for spec in specs:
            self._partition_counts[spec.name] = spec.partitions

    async def partition_count(self, topic: str) -> int:
        cached = self._partition_counts.get(topic)
        if cached is not None:
            return cached
        async with asyncio.timeout(self._timeout_s), self.engine.connect() as conn:
            count = (
                await conn.execute(select(schema.topics.c.partitions).where(schema.topics.c.name == topic))
            ).scalar_one_or_none()
        if not isinstance(count, int):
            raise UnknownTopic(f"topic {topic} does not exist in {self._path}; create it with ensure_topics")
        self._partition_counts[topic] = count
        return count

    # -- publishing -----------------------------------------------------------------------------------------------

    async def _publish_many(self, events: Sequence[Event]) -> list[Published]:
        if not events:
            return []
        counts = {topic: await self.partition_count(topic) for topic in {event.topic for event in events}}
        targets = [TopicPartition(event.topic, partition_for(event.key, counts[event.topic])) for event in events]
        per_partition: dict[TopicPartition, int] = defaultdict(int)
        for target in targets:
            per_partition[target] += 1
        now = self._clock_ms()
        async with self._write_lock, asyncio.timeout(self._timeout_s), self.engine.begin() as conn:
            next_offsets = {tp: await self._reserve(conn, tp, n) for tp, n in per_partition.items()}
            published: list[Published] = []
            rows = []
            for event, tp in zip(events, targets, strict=True):
                offset = next_offsets[tp]
                next_offsets[tp] = offset + 1
                published.append(Published(tp.partition, offset))
                rows.append(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "offset": offset,
                        "key": event.key,
                        "value": event.value,
                        "headers": schema.encode_headers(event.headers),
                        "timestamp_ms": now,
                    }
                )
            await conn.execute(insert(schema.records), rows)
        # Committed: now wake this process's pollers.
        self._wake()
        return published

    async def _reserve(self, conn: AsyncConnection, tp: TopicPartition, count: int) -> int:
        """Take ``count`` offsets of ``tp`` and return the first."""
        table = schema.partitions
        end = (
            await conn.execute(
                update(table)
                .where(table.c.topic == tp.topic, table.c.partition == tp.partition)
                .values(next_offset=table.c.next_offset + count)
                .returning(table.c.next_offset)
            )
        ).scalar_one_or_none()
        if end is None:
            raise UnknownTopic(f"partition {tp.partition} of topic {tp.topic} does not exist in {self._path}")
        first: int = end - count
        return first

    def _wake(self) -> None:
        # Replace, then set: a poller holds the event it saw before reading, so no wake-up falls between.
        appended, self._appended = self._appended, asyncio.Event()
        appended.set()

    # -- consuming ------------------------------------------------------------------------------------------------

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        listener: RebalanceListener | None = None,
        *,
        fetch_wait_s: float = 0.0,  # polls read the database directly: nothing to gain by waiting
    ) -> EmbeddedSubscription:
        if group in self._members:
            raise GroupBusy(f"consumer group {group} already has a member; the embedded log allows one")
        counts = {topic: await self.partition_count(topic) for topic in topics}
        assignment = frozenset(
            TopicPartition(topic, partition) for topic, count in counts.items() for partition in range(count)
        )
        committed = await self.committed(group, topics)
        positions = {tp: committed.get(tp, 0) for tp in assignment}
        self._members.add(group)
        subscription = EmbeddedSubscription(self, group, positions, on_close=self._members.discard)
        if listener is not None:
            try:
                await listener.on_assigned(assignment)
            except BaseException:
                await subscription.close()
                raise
        return subscription

    async def committed(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        table = schema.group_offsets
        async with asyncio.timeout(self._timeout_s), self.engine.connect() as conn:
            rows = await conn.execute(
                select(table.c.topic, table.c.partition, table.c.next_offset).where(
                    table.c.group_id == group, table.c.topic.in_(list(topics))
                )
            )
            return {TopicPartition(row.topic, row.partition): row.next_offset for row in rows}

    async def offsets(self, topic: str) -> dict[TopicPartition, tuple[int, int]]:
        count = await self.partition_count(topic)
        table, log = schema.partitions, schema.records
        async with asyncio.timeout(self._timeout_s), self.engine.connect() as conn:
            ends: dict[int, int] = {
                row.partition: row.next_offset
                for row in await conn.execute(
                    select(table.c.partition, table.c.next_offset).where(table.c.topic == topic)
                )
            }
            starts: dict[int, int] = {
                row.partition: row.first
                for row in await conn.execute(
                    select(log.c.partition, func.min(log.c.offset).label("first"))
                    .where(log.c.topic == topic)
                    .group_by(log.c.partition)
                )
            }
        return {TopicPartition(topic, p): (starts.get(p, ends.get(p, 0)), ends.get(p, 0)) for p in range(count)}

    async def read_from_start(self, topic: str, *, max_records: int = 500) -> AsyncGenerator[list[Record], None]:
        positions = {TopicPartition(topic, p): 0 for p in range(await self.partition_count(topic))}
        ends: dict[TopicPartition, int] | None = None
        while positions:
            records, now_ends = await self.fetch(positions, max_records)
            if ends is None:  # the first fetch read the ends before any record: where this read stops
                ends = {tp: now_ends.get(tp, 0) for tp in positions}
            records = [record for record in records if record.offset < ends[record.topic_partition]]
            for record in records:
                positions[record.topic_partition] = record.offset + 1
            positions = {tp: offset for tp, offset in positions.items() if offset < ends[tp]}
            if records:
                yield records
            elif positions:  # the log is append-only: below its end every offset has its record
                raise BusError(f"records of {topic} below its end are missing from {self._path}")

    def appended(self) -> asyncio.Event:
        """An event set at the next publish in this process; take it *before* reading to miss none."""
        return self._appended

    async def fetch(
        self, positions: Mapping[TopicPartition, int], max_records: int
    ) -> tuple[list[Record], dict[TopicPartition, int]]:
        """Records from ``positions`` on, at most ``max_records`` spread over the partitions that have any;
        and every partition's end offset."""
        table, log = schema.partitions, schema.records
        topics = sorted({tp.topic for tp in positions})
        async with asyncio.timeout(self._timeout_s), self.engine.connect() as conn:
            ends = {
                TopicPartition(row.topic, row.partition): row.next_offset
                for row in await conn.execute(
                    select(table.c.topic, table.c.partition, table.c.next_offset).where(table.c.topic.in_(topics))
                )
            }
            ready = [tp for tp, position in positions.items() if ends.get(tp, 0) > position]
            if not ready:
                return [], ends
            # An even share for each partition with data, so one backlog cannot starve the others.
            share = max(1, max_records // len(ready))
            fetched: list[Record] = []
            for tp in ready:
                rows = await conn.execute(
                    select(log)
                    .where(log.c.topic == tp.topic, log.c.partition == tp.partition, log.c.offset >= positions[tp])
                    .order_by(log.c.offset)
                    .limit(min(share, max_records - len(fetched)))
                )
                fetched.extend(
                    Record(
                        topic=row.topic,
                        partition=row.partition,
                        offset=row.offset,
                        key=row.key,
                        value=row.value,
                        headers=schema.decode_headers(row.headers),
                        timestamp_ms=row.timestamp_ms,
                    )
                    for row in rows
                )
                if len(fetched) >= max_records:
                    break
        return fetched, ends

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Store ``group``'s next offsets (used by ``EmbeddedSubscription.commit``)."""
        if not offsets:
            return
        table = schema.group_offsets
        statement = sqlite_insert(table).values(
            [
                {"group_id": group, "topic": tp.topic, "partition": tp.partition, "next_offset": offset}
                for tp, offset in offsets.items()
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.group_id, table.c.topic, table.c.partition],
            set_={"next_offset": statement.excluded.next_offset},
        )
        async with self._write_lock, asyncio.timeout(self._timeout_s), self.engine.begin() as conn:
            await conn.execute(statement)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise BusError(f"the embedded log {self._path} is not open")
        return self._engine
