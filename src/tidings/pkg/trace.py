"""Tracing: the process's OpenTelemetry TracerProvider, the server spans our middleware opens, and the trace id
that error bodies and log lines carry.

No exporter yet: spans exist so every request has a real trace id that joins its logs and errors across HTTP and
gRPC (W3C ``traceparent``). Exporters come with the observability work.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

_TRACER = "tidings"


def configure(service_name: str) -> None:
    """Install the process's TracerProvider (once per process, as OpenTelemetry allows)."""
    trace.set_tracer_provider(TracerProvider(resource=Resource.create({SERVICE_NAME: service_name})))


@contextmanager
def server_span(name: str, carrier: Mapping[str, str]) -> Iterator[trace.Span]:
    """A SERVER span for one incoming call, child of the caller's span when ``carrier`` (headers) names one.

    Exceptions are the caller's to record: the middleware turns them into statuses, which are not crashes.
    """
    parent = propagate.extract(carrier)
    tracer = trace.get_tracer(_TRACER)
    with tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.SERVER, record_exception=False, set_status_on_exception=False
    ) as span:
        yield span


def inject(carrier: MutableMapping[str, str]) -> None:
    """Put the current span's context into outgoing headers, so the callee's span joins this trace."""
    propagate.inject(carrier)


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits, or ``""`` outside any recorded trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
