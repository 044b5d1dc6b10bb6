"""Trace context across the event bus: a record's consumer span continues its producer span."""

from __future__ import annotations

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tidings.pkg import trace
from tidings.pkg.bus import Event, Published, Record


def _record(event: Event, offset: int) -> Record:
    return Record(event.topic, 0, offset, event.key, event.value, event.headers)


def test_consume_spans_continue_each_records_producer_span(spans: InMemorySpanExporter) -> None:
    tracer = otel_trace.get_tracer("test")
    made: list[Event] = []
    for request in ("first", "second"):
        with tracer.start_as_current_span(request):
            carrier: dict[str, str] = {}
            trace.inject(carrier)
            made.append(Event("t", b"k", b"v", (("event-type", b"x"), *((k, v.encode()) for k, v in carrier.items()))))
    with trace.producing("kafka", made) as producing:
        assert [dict(event.headers)["event-type"] for event in producing.events] == [b"x", b"x"]
        producing.done([Published(0, 7), Published(0, 8)])
    records = [_record(event, offset) for offset, event in enumerate(producing.events)]
    with trace.consuming("kafka", "persist", records), tracer.start_as_current_span("INSERT"):
        pass

    finished = spans.get_finished_spans()
    requests = {span.name: span for span in finished if span.name in ("first", "second")}
    sends = [span for span in finished if span.kind == SpanKind.PRODUCER]
    consumes = [span for span in finished if span.kind == SpanKind.CONSUMER]
    insert = next(span for span in finished if span.name == "INSERT")
    assert [send.parent.span_id for send in sends if send.parent] == [
        requests["first"].context.span_id,
        requests["second"].context.span_id,
    ]
    assert (sends[0].attributes or {})["messaging.kafka.offset"] == 7
    assert sorted(consume.parent.span_id for consume in consumes if consume.parent) == sorted(
        send.context.span_id for send in sends
    )
    # The handler's own spans go under the first record's consume span, in the first request's trace.
    main = next(c for c in consumes if c.parent and c.parent.span_id == sends[0].context.span_id)
    assert insert.parent is not None
    assert insert.parent.span_id == main.context.span_id
    assert insert.context.trace_id == requests["first"].context.trace_id
    assert all((c.attributes or {})["messaging.consumer.group.name"] == "persist" for c in consumes)


def test_an_event_published_outside_any_trace_is_left_as_it_is(spans: InMemorySpanExporter) -> None:
    event = Event("t", b"k", b"v", (("event-type", b"x"),))
    with trace.producing("kafka", [event]) as producing:
        producing.done([Published(0, 0)])
    assert producing.events == [event]
    assert not [span for span in spans.get_finished_spans() if span.kind == SpanKind.PRODUCER]


def test_an_unsampled_trace_crosses_the_bus_without_spans_but_keeps_its_trace_id(spans: InMemorySpanExporter) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    unsampled = Event("t", b"k", b"v", (("traceparent", f"00-{trace_id}-{span_id}-00".encode()),))
    with trace.producing("kafka", [unsampled]) as producing:
        producing.done([Published(0, 0)])
    assert producing.events == [unsampled]
    with trace.consuming("kafka", "persist", [_record(unsampled, 0)]) as consume:
        assert not consume.is_recording()
        assert trace.current_span().get_span_context().trace_id == int(trace_id, 16)
    assert not spans.get_finished_spans()
