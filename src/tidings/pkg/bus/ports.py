"""The event bus as ``biz`` and ``job`` code see it: ports that the embedded log and Kafka both implement."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Protocol

from tidings.pkg.bus.records import Event, Headers, Published, Record, TopicPartition, TopicSpec


class Publisher(Protocol):
    """Appends events to topics; a call returns only once the events are durable."""

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Published: ...

    async def publish_many(self, events: Sequence[Event]) -> list[Published]:
        """Publish in order, in one round trip (Kafka) or one transaction (embedded); positions in input order."""
        ...


class RebalanceListener(Protocol):
    """Told when the group hands this member partitions or takes them away.

    ``on_revoked`` runs before another member may read the partitions: it is the last moment to finish in-flight
    work and commit, so the next owner starts where this one stopped.
    """

    async def on_assigned(self, partitions: frozenset[TopicPartition]) -> None: ...

    async def on_revoked(self, partitions: frozenset[TopicPartition]) -> None: ...


class Subscription(Protocol):
    """One member of a consumer group: reads its assigned partitions and commits explicit offsets."""

    async def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` records, in offset order per partition; waits up to ``timeout_s`` for the first."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record ``offsets`` (the *next* offset to read, i.e. last handled + 1) for the group."""
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop returning records of ``partitions`` from ``poll`` (backpressure) while staying in the group."""
        ...

    def resume(self, partitions: Iterable[TopicPartition]) -> None: ...

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's end offset as last seen by ``poll`` (no I/O), or ``None`` before the first fetch."""
        ...

    async def close(self) -> None:
        """Leave the group. Commits nothing: commit what was handled before closing."""
        ...


class EventBus(Publisher, Protocol):
    """Topics, publishing and consumer groups: ``EmbeddedLog`` (SQLite) or ``KafkaEventBus``."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the missing topics with their partition counts; raise ``TopicConflict`` on a different count."""
        ...

    async def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has, or raise ``UnknownTopic``."""
        ...

    async def subscribe(
        self,
        group: str,
        topics: Sequence[str],
        listener: RebalanceListener | None = None,
        *,
        fetch_wait_s: float = 0.0,
    ) -> Subscription:
        """Join ``group`` on ``topics``; a group without committed offsets starts at the earliest record.

        ``fetch_wait_s``: a fetch may wait this long for more records to come (one fetch brings many instead of
        each record its own), where the log can; 0 answers as soon as there is one."""
        ...

    async def committed(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """The group's committed next offsets on ``topics``; partitions never committed are absent."""
        ...

    async def offsets(self, topic: str) -> dict[TopicPartition, tuple[int, int]]:
        """Each partition's earliest offset held and its end (the next offset to be written): a group's lag is the
        end less its committed offset, the records held the end less the earliest. ``UnknownTopic``."""
        ...

    def read_from_start(self, topic: str, *, max_records: int = 500) -> AsyncGenerator[list[Record], None]:
        """Every record ``topic`` holds when the read begins, from its earliest offset to its end then, in batches
        of at most ``max_records`` (each partition in offset order); records published meanwhile are not read.

        For tools that look at a whole topic (the dead letters' report and replay): it joins no consumer group and
        commits nothing, so the groups reading the topic see nothing of it. Raises ``UnknownTopic`` for a topic that
        does not exist. Close it (``contextlib.aclosing``) when leaving before the end."""
        ...
