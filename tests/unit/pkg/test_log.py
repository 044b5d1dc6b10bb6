from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tidings.pkg import log


def configure() -> io.StringIO:
    stream = io.StringIO()
    log.configure(service_name="tidings-test", service_version="9.9.9", level="INFO", fmt="ecs", stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_ecs_json_with_the_service_fields() -> None:
    stream = configure()
    log.get("chat").info("conversation created", conversation_id="42")
    [line] = lines(stream)
    assert line["message"] == "conversation created"
    assert line["log.level"] == "info"
    assert line["service"] == {"name": "tidings-test", "version": "9.9.9"}
    assert line["event"] == {"dataset": "tidings-test.chat"}
    assert "@timestamp" in line
    assert line["conversation_id"] == "42"


def test_lines_inside_a_span_carry_its_trace_and_span_ids() -> None:
    stream = configure()
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        log.get().info("inside")
    log.get().info("outside")
    inside, outside = lines(stream)
    assert inside["trace"] == {"id": "0af7651916cd43dd8448eb211c80319c"}
    assert inside["span"] == {"id": "b7ad6b7169203331"}
    assert "trace" not in outside


def test_standard_library_records_use_the_same_format() -> None:
    stream = configure()
    logging.getLogger("aiokafka").warning("broker away")
    [line] = lines(stream)
    assert line["message"] == "broker away"
    assert line["log.level"] == "warning"
    assert line["event"] == {"dataset": "tidings-test.aiokafka"}


def test_an_exception_is_logged_with_its_stack_in_error_stack_trace() -> None:
    stream = configure()
    try:
        raise ValueError("boom")
    except ValueError:
        log.get().exception("failed")
    [line] = lines(stream)
    error = line["error"]
    assert isinstance(error, dict)
    assert "ValueError: boom" in error["stack_trace"]
