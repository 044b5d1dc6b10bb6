"""Log lines: ECS JSON with the service, dataset and trace fields, and secrets or message text never written."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider

from tidings.pkg import log, trace
from tidings.pkg.bus import TopicPartition
from tidings.pkg.log import REDACTED, redact


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _configured() -> io.StringIO:
    stream = io.StringIO()
    log.configure(service_name="tidings-test", service_version="9.9.9", stream=stream)
    if not isinstance(otel_trace.get_tracer_provider(), TracerProvider):
        trace.configure("tidings-test")
    return stream


def test_redaction_hides_secrets_and_message_text_also_nested() -> None:
    event = redact(
        None,
        "info",
        {
            "event": "signed in",
            "password": "correct horse",
            "refresh_token": "r-123",
            "Authorization": "Bearer abc",
            "text": "hello bob",
            "request": {"headers": {"authorization": "Bearer abc"}, "body": {"text": "hi"}, "path": "/v1/x"},
            "items": [{"jwt_secret": "s"}],
            "user_id": "42",
        },
    )
    assert event["event"] == "signed in"
    assert event["password"] == event["refresh_token"] == event["Authorization"] == event["text"] == REDACTED
    assert event["request"]["headers"]["authorization"] == REDACTED
    assert event["request"]["body"] == REDACTED
    assert event["request"]["path"] == "/v1/x"
    assert event["items"][0]["jwt_secret"] == REDACTED
    assert event["user_id"] == "42"


def test_a_logged_password_or_token_never_reaches_the_stream() -> None:
    stream = _configured()
    log.get("account").info("registered", password="correct horse", access_token="eyJhbGci", text="hello")
    written = stream.getvalue()
    assert "correct horse" not in written
    assert "eyJhbGci" not in written
    assert "hello" not in written
    assert written.count(REDACTED) == 3


def test_every_line_is_ecs_json_and_lines_of_one_span_share_its_trace_id() -> None:
    stream = _configured()
    with otel_trace.get_tracer("test").start_as_current_span("request") as span:
        log.get("access").info("POST /v1/x 201", **{"http.response.status_code": 201})
        logging.getLogger("uvicorn").warning("from the standard library")
    log.get("app").info("outside any request")
    lines = _lines(stream)
    assert len(lines) == 3
    for line in lines:
        assert line["service"] == {"name": "tidings-test", "version": "9.9.9"}
        assert line["log.level"] in ("info", "warning")
        assert line["event"]["dataset"].startswith("tidings-test.")
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert lines[0]["event"]["dataset"] == "tidings-test.access"
    assert lines[0]["trace"]["id"] == lines[1]["trace"]["id"] == trace_id
    assert lines[0]["span"]["id"] == format(span.get_span_context().span_id, "016x")
    assert "trace" not in lines[2]


def test_named_tuples_in_a_line_are_left_alone() -> None:
    event = redact(None, "info", {"event": "assigned", "partitions": [TopicPartition("t", 0)]})
    assert event["partitions"] == [TopicPartition("t", 0)]
