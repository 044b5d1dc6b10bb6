"""Dead letters: where a record goes when it cannot be handled, and the headers that say where it came from."""

from __future__ import annotations

from tidings.pkg.bus.records import Event, Record

SUFFIX = ".dlq"
# Error text is for people debugging; a bounded header keeps one bad record from making a huge one.
_MAX_ERROR_MESSAGE = 1000


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
