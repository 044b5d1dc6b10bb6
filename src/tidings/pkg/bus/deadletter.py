"""Dead letters: where a record goes when it cannot be handled, and the headers that say where it came from.

``dead_letter_event`` makes the dead letter; ``origin_of`` reads back what it says and ``original_event`` gives the
record as it was, for a replay to its source topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidings.pkg.bus.records import Event, Record

SUFFIX = ".dlq"
# Error text is for people debugging; a bounded header keeps one bad record from making a huge one.
_MAX_ERROR_MESSAGE = 1000
# Every header the dead letter adds starts with this; the record's own are kept as they were.
_HEADER_PREFIX = "dlq."


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{SUFFIX}"


def dead_letter_event(record: Record, *, group: str, reason: str, error: BaseException) -> Event:
    """The record, same key and value and headers, plus ``dlq.*`` headers naming its origin and the failure."""
    origin = (
        ("dlq.topic", record.topic.encode()),
        ("dlq.partition", str(record.partition).encode()),
        ("dlq.offset", str(record.offset).encode()),
        ("dlq.group", group.encode()),
        ("dlq.reason", reason.encode()),
        ("dlq.error.type", type(error).__name__.encode()),
        ("dlq.error.message", str(error)[:_MAX_ERROR_MESSAGE].encode(errors="replace")),
    )
    return Event(dead_letter_topic(record.topic), record.key, record.value, record.headers + origin)


@dataclass(frozen=True, slots=True)
class Origin:
    """What a dead letter's headers say: where the record was, which group gave up on it, and why."""

    topic: str
    # -1 when the header is missing (a record not dead-lettered by ``OrderedConsumer``).
    partition: int
    offset: int
    group: str
    reason: str
    error_type: str
    error_message: str


def origin_of(dead_letter: Record) -> Origin:
    """The origin a dead letter's ``dlq.*`` headers name; a missing header reads as empty (the topic: the dead-letter
    topic's name without its suffix)."""

    def text(name: str) -> str:
        return (dead_letter.header(f"{_HEADER_PREFIX}{name}") or b"").decode(errors="replace")

    def number(name: str) -> int:
        value = text(name)
        return int(value) if value.isdigit() else -1

    topic = text("topic") or dead_letter.topic.removesuffix(SUFFIX)
    return Origin(
        topic,
        number("partition"),
        number("offset"),
        text("group"),
        text("reason"),
        text("error.type"),
        text("error.message"),
    )


def original_event(dead_letter: Record) -> Event:
    """The record as it was before it died: to its source topic, with its key, value and own headers (no ``dlq.*``)."""
    headers = tuple((name, value) for name, value in dead_letter.headers if not name.startswith(_HEADER_PREFIX))
    return Event(origin_of(dead_letter).topic, dead_letter.key, dead_letter.value, headers)
