"""The values that travel on the event bus, free of any client library: records, topics, positions, errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

Headers = tuple[tuple[str, bytes], ...]

# Kafka's own rule for topic names, applied to both adapters so a name that works in dev works in production.
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class TopicPartition(NamedTuple):
    """One partition of one topic: the unit of order, assignment and committed offsets."""

    topic: str
    partition: int


class Published(NamedTuple):
    """Where a published event was stored; returned once it is durable."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Record:
    """An event read from the bus, at its place in the log."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The first value of header ``name``, or ``None``."""
        return next((value for key, value in self.headers if key == name), None)


@dataclass(frozen=True, slots=True)
class Event:
    """An event to publish: ``key`` picks the partition, so events of one key stay in order."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and its partition count, created explicitly (brokers never auto-create ours)."""

    name: str
    partitions: int

    def __post_init__(self) -> None:
        if not _TOPIC_NAME.fullmatch(self.name) or self.name in {".", ".."}:
            raise ValueError(f"invalid topic name {self.name!r}: use 1-249 of [A-Za-z0-9._-]")
        if self.partitions < 1:
            raise ValueError(f"topic {self.name}: partitions must be >= 1, got {self.partitions}")


class BusError(Exception):
    """The bus could not do what was asked; the message says what and where."""


class UnknownTopic(BusError):
    """The topic does not exist; topics are created by ``ensure_topics``, never on first use."""


class TopicConflict(BusError):
    """A topic exists with another partition count; changing it would move keys to other partitions."""


class GroupBusy(BusError):
    """The embedded log allows one member per consumer group, and the group already has one."""


class CommitFailed(BusError):
    """The group moved on (a rebalance gave the partitions to another member): those offsets were not stored."""
