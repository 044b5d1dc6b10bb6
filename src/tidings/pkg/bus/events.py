"""The envelope every event travels in, and how a topic is declared (its owner declares it, once).

An event is a protobuf message from ``api/tidings/<service>/v1/events.proto``. Its record carries the event type
(the message's full protobuf name), the schema version and the W3C trace context in headers, and is keyed by the
id whose events must stay in order. Producers and consumers both go through one ``EventTopic`` declared by the
topic's owner (``tidings.service.chat.topics``), so its name, partition count and payload type cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from tidings.pkg import trace
from tidings.pkg.bus import Event, Record, TopicSpec
from tidings.pkg.bus.consumer import UnknownEventVersion

# Record headers of the envelope.
EVENT_TYPE = "event-type"
EVENT_VERSION = "event-version"
# W3C trace context headers that ``trace.inject`` may produce.
_TRACE_HEADERS = ("traceparent", "tracestate")

M = TypeVar("M", bound=ProtoMessage)


@dataclass(frozen=True, slots=True)
class EventTopic(Generic[M]):
    """A topic, its partition count, and the one event type (and schema version) published to it."""

    name: str
    partitions: int
    message: type[M]
    version: int = 1

    @property
    def event_type(self) -> str:
        return str(self.message.DESCRIPTOR.full_name)


class Topics:
    """Topic names in one namespace: empty in deployments; a test run gets its own prefix on a shared broker."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def name(self, topic: EventTopic[M]) -> str:
        return f"{self.prefix}{topic.name}"

    def specs(self, topics: Iterable[EventTopic[Any]]) -> list[TopicSpec]:
        """What ``EventBus.ensure_topics`` needs to create ``topics`` here."""
        return [TopicSpec(self.name(topic), topic.partitions) for topic in topics]


def id_key(entity_id: int) -> bytes:
    """The record key of an entity id: its decimal digits (readable in tools, and stable across languages)."""
    return str(entity_id).encode()


def encode(topics: Topics, topic: EventTopic[M], key: bytes, payload: M) -> Event:
    """An event of ``topic`` with the envelope headers; the trace context is the current span's."""
    if not isinstance(payload, topic.message):
        raise TypeError(f"topic {topic.name} carries {topic.event_type}, not {type(payload).__name__}")
    carrier: dict[str, str] = {}
    trace.inject(carrier)
    headers = (
        (EVENT_TYPE, topic.event_type.encode()),
        (EVENT_VERSION, str(topic.version).encode()),
        *((name, carrier[name].encode()) for name in _TRACE_HEADERS if name in carrier),
    )
    return Event(topics.name(topic), key, payload.SerializeToString(), headers)


def decode(topic: EventTopic[M], record: Record) -> M:
    """The payload of ``record``; ``UnknownEventVersion`` (dead letter) for a type or version we do not know.

    A payload that does not parse raises ``DecodeError``: a poison record, retried and then dead-lettered.
    """
    event_type = (record.header(EVENT_TYPE) or b"").decode(errors="replace")
    version = (record.header(EVENT_VERSION) or b"").decode(errors="replace")
    if event_type != topic.event_type or version != str(topic.version):
        raise UnknownEventVersion(
            record, f"{topic.name} expects {topic.event_type} v{topic.version}, got {event_type!r} v{version!r}"
        )
    payload = topic.message()
    try:
        payload.ParseFromString(record.value)
    except DecodeError as exc:
        raise DecodeError(f"{topic.name} offset {record.offset}: not a {topic.event_type}: {exc}") from exc
    return payload


def trace_carrier(record: Record) -> Mapping[str, str]:
    """The record's trace context headers, for ``trace.server_span`` or propagation onwards."""
    return {name: value.decode() for name, value in record.headers if name in _TRACE_HEADERS}
