"""A dead letter keeps the record whole and says where it came from; reading it back gives the original record."""

from __future__ import annotations

from tidings.pkg.bus import Event, Record
from tidings.pkg.bus.deadletter import Origin, dead_letter_event, origin_of, original_event


def test_a_dead_letter_reads_back_as_its_origin_and_its_original_record() -> None:
    record = Record("chat.message.sent", 4, 17, b"42", b"payload", (("event-type", b"x"), ("traceparent", b"00-a")))
    event = dead_letter_event(record, group="persist", reason="handler_error", error=ValueError("bad"))
    dead = Record(event.topic, 0, 3, event.key, event.value, event.headers, timestamp_ms=1)
    assert origin_of(dead) == Origin("chat.message.sent", 4, 17, "persist", "handler_error", "ValueError", "bad")
    assert original_event(dead) == Event("chat.message.sent", b"42", b"payload", record.headers)


def test_a_record_without_the_dead_letter_headers_comes_from_the_topic_its_name_says() -> None:
    dead = Record("cache.invalidate.dlq", 0, 0, b"k", b"v", (("event-type", b"x"),))
    assert origin_of(dead) == Origin("cache.invalidate", -1, -1, "", "", "", "")
    assert original_event(dead) == Event("cache.invalidate", b"k", b"v", (("event-type", b"x"),))
