"""The dead-letters task's adapters: ``BusDeadLetters`` reads the dead-letter topics whole (in no consumer group)
and publishes records back to their source topics; ``SQLReplayLog`` keeps which were replayed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing

from sqlalchemy import select

from tidings.pkg import db
from tidings.pkg.bus import BusError, Event, EventBus, Record, UnknownTopic
from tidings.pkg.bus.deadletter import origin_of, original_event
from tidings.pkg.errors import translated
from tidings.pkg.repo import chunks, insert_skipping_duplicates
from tidings.task.biz.deadletters import DeadLetter, MissingTopic
from tidings.task.biz.errors import Unavailable
from tidings.task.data.leases import FencedRepo
from tidings.task.tables import dead_letter_replays


class BusDeadLetters:
    """The dead-letter topics on the event bus, which is opened at the first read (``Infra.bus``): a task process
    that never reports dead letters never connects to it."""

    def __init__(self, bus: Callable[[], Awaitable[EventBus]], *, batch: int = 500) -> None:
        self._bus = bus
        self._batch = batch

    async def read(self, topic: str) -> AsyncGenerator[list[DeadLetter], None]:
        try:
            bus = await self._bus()
            async with aclosing(bus.read_from_start(topic, max_records=self._batch)) as batches:
                async for records in batches:
                    yield [dead_letter(record) for record in records]
        except UnknownTopic as exc:
            raise MissingTopic(topic) from exc
        except BusError as exc:
            raise Unavailable(f"event bus: {exc!r}") from exc

    async def republish(self, letters: Sequence[DeadLetter]) -> None:
        events = [Event(letter.origin_topic, letter.key, letter.value, letter.headers) for letter in letters]
        with translated((BusError,), Unavailable, "event bus"):
            await (await self._bus()).publish_many(events)


def dead_letter(record: Record) -> DeadLetter:
    """A dead-letter topic's record as the task sees it: its origin from the ``dlq.*`` headers, and the original
    record (what a replay publishes)."""
    origin, original = origin_of(record), original_event(record)
    error = f"{origin.error_type}: {origin.error_message}" if origin.error_type else origin.error_message
    return DeadLetter(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp_ms,
        original.topic,
        origin.group,
        origin.reason,
        error,
        original.key,
        original.value,
        original.headers,
    )


class SQLReplayLog(FencedRepo):
    """What was replayed; each write fenced by the task's lease."""

    async def replayed(self, topic: str, positions: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        table = dead_letter_replays
        offsets: dict[int, list[int]] = defaultdict(list)
        for partition, offset in positions:
            offsets[partition].append(offset)
        found: set[tuple[int, int]] = set()
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                for partition, wanted in offsets.items():
                    for chunk in chunks(wanted):
                        rows = await conn.execute(
                            select(table.c.record_offset).where(
                                table.c.topic == topic,
                                table.c.partition_id == partition,
                                table.c.record_offset.in_(list(chunk)),
                            )
                        )
                        found.update((partition, offset) for offset in rows.scalars())
        return found

    async def record(self, letters: Sequence[DeadLetter], replayed_at_ms: int) -> None:
        if not letters:
            return
        rows = [
            {
                "topic": letter.topic,
                "partition_id": letter.partition,
                "record_offset": letter.offset,
                "origin_topic": letter.origin_topic,
                "replayed_at_ms": replayed_at_ms,
            }
            for letter in letters
        ]
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                # A record logged already (a replay that died after logging some) stays as it was.
                await conn.execute(insert_skipping_duplicates(conn.dialect, dead_letter_replays, "topic"), rows)
