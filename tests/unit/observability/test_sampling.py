"""Sampling: at most N new traces a second, whatever the ratio lets through; the ratio's drops stay drops; an
unsampled trace travels on without spans."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision

from tidings.pkg import trace
from tidings.pkg.trace import AtMostPerSecond


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sampled(sampler: AtMostPerSecond, count: int) -> int:
    decisions = [sampler.should_sample(None, trace_id, "span").decision for trace_id in range(1, count + 1)]
    return sum(decision is Decision.RECORD_AND_SAMPLE for decision in decisions)


def test_at_most_the_rate_is_sampled_and_the_budget_refills_with_time() -> None:
    clock = Clock()
    sampler = AtMostPerSecond(ALWAYS_ON, 20, clock)
    assert sampled(sampler, 100) == 20
    clock.now += 0.5
    assert sampled(sampler, 100) == 10
    clock.now += 10  # a long quiet time refills a second's worth, not more
    assert sampled(sampler, 100) == 20


def test_what_the_inner_sampler_drops_stays_dropped() -> None:
    assert sampled(AtMostPerSecond(ALWAYS_OFF, 20, Clock()), 10) == 0


def test_an_unsampled_trace_is_carried_across_calls_without_making_spans(spans: InMemorySpanExporter) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    unsampled = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"}
    with trace.server_span("Chat/Send", unsampled) as server:
        assert not server.is_recording()
        assert trace.current_trace_id() == trace_id
        client, carrier = trace.start_client_span("Account/Identify")
        client.end()
    assert carrier["traceparent"].startswith(f"00-{trace_id}-")
    assert carrier["traceparent"].endswith("-00")
    # A sampled caller still gets its server and client spans, in its trace.
    with trace.server_span("Chat/Send", {"traceparent": unsampled["traceparent"][:-2] + "01"}):
        trace.start_client_span("Account/Identify")[0].end()
    assert [span.name for span in spans.get_finished_spans()] == ["Account/Identify", "Chat/Send"]
    assert {format(span.context.trace_id, "032x") for span in spans.get_finished_spans()} == {trace_id}
