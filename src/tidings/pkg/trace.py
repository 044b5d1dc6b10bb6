"""Tracing: the process's OpenTelemetry TracerProvider and exporter, and the spans our middleware opens.

One trace follows a client request across HTTP (FastAPI's own server span), gRPC (``server_span`` and
``client_span`` in our interceptors), the event bus (``producing``/``consuming``: the W3C ``traceparent`` travels
in record headers, so a job's handler runs in a span whose parent is the producer's), SQLAlchemy and Redis (the
contrib instrumentations, per engine and per client). Exporters come from ``TraceConf``: none, console or a file of
JSON lines (``tidings dev``, tests across processes), OTLP over gRPC or HTTP (Jaeger, Tempo, a collector), Zipkin.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as OTLPGrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as OTLPHttpExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_instrumentation_version
from opentelemetry.metrics import get_meter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, Span, SpanKind, StatusCode

from tidings import __version__
from tidings.pkg.bus.records import Event, Published, Record
from tidings.pkg.conf import TraceConf

_TRACER = "tidings"
# W3C trace context headers that travel with calls and records.
TRACE_HEADERS = ("traceparent", "tracestate")
# The request headers that carry a caller's trace context (W3C and baggage), as ASGI names them.
HTTP_TRACE_HEADERS = frozenset(name.encode() for name in (*TRACE_HEADERS, "baggage"))


def configure(
    service_name: str, conf: TraceConf | None = None, *, service_version: str = __version__
) -> TracerProvider:
    """Install the process's TracerProvider with the exporter and sampling of ``conf`` (once per process).

    Without ``conf``, the defaults: spans are recorded, so every request has a trace id for its logs and error
    bodies, but exported nowhere.
    """
    conf = conf or TraceConf()
    attributes: dict[str, Any] = {
        SERVICE_NAME: service_name,
        "service.namespace": "tidings",
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
    }
    if service_version:
        attributes[SERVICE_VERSION] = service_version
    root: Sampler = TraceIdRatioBased(conf.sample_ratio)
    if conf.max_traces_per_s > 0:
        root = AtMostPerSecond(root, conf.max_traces_per_s)
    provider = TracerProvider(resource=Resource.create(attributes), sampler=ParentBased(root))
    processor = span_processor(conf)
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


class AtMostPerSecond(Sampler):
    """``sampler``'s decision for a new trace, but at most ``per_s`` sampled traces a second (a token bucket with a
    second's worth of burst). The SDK has ratio samplers only; Jaeger's rate-limiting sampler is this idea."""

    def __init__(self, sampler: Sampler, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._sampler = sampler
        self._per_s = per_s
        self._clock = clock
        self._tokens = per_s
        self._at = clock()

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        result = self._sampler.should_sample(*args, **kwargs)
        if result.decision is not Decision.RECORD_AND_SAMPLE:
            return result
        now = self._clock()
        self._tokens = min(self._per_s, self._tokens + (now - self._at) * self._per_s)
        self._at = now
        if self._tokens < 1:
            return SamplingResult(Decision.DROP)
        self._tokens -= 1
        return result

    def get_description(self) -> str:
        return f"AtMostPerSecond({self._sampler.get_description()}, {self._per_s:g}/s)"


def span_processor(conf: TraceConf) -> SpanProcessor | None:
    """The batching processor that sends finished spans to ``conf``'s exporter, or ``None`` for ``none``."""
    exporter = _exporter(conf)
    if exporter is None:
        return None
    if conf.exporter in ("console", "file"):
        # Local files: write soon, so a person (or a test) reading them sees a request's spans at once.
        return BatchSpanProcessor(exporter, schedule_delay_millis=200)
    return BatchSpanProcessor(exporter)


def _exporter(conf: TraceConf) -> SpanExporter | None:
    if conf.exporter == "none":
        return None
    if conf.exporter == "console":
        return ConsoleSpanExporter(formatter=_json_line)
    if conf.exporter == "file":
        return JsonLinesSpanExporter(conf.path)
    if conf.exporter == "zipkin":
        return ZipkinExporter(endpoint=conf.endpoint or "http://127.0.0.1:9411/api/v2/spans")
    if conf.protocol == "http":
        return OTLPHttpExporter(endpoint=conf.endpoint or "http://127.0.0.1:4318/v1/traces")
    return OTLPGrpcExporter(endpoint=conf.endpoint or "http://127.0.0.1:4317", insecure=conf.insecure)


def _json_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span to ``path`` as one JSON line (``ReadableSpan.to_json``).

    Each export is one ``write`` on a file opened with ``O_APPEND``, so several processes can share one file
    without interleaving their lines.
    """

    def __init__(self, path: str) -> None:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(_json_line(span) for span in spans).encode()
        with self._lock:
            if self._fd is None:
                return SpanExportResult.FAILURE
            os.write(self._fd, data)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


# -- libraries ------------------------------------------------------------------------------------------------------


def instrument_engine(engine: Any) -> None:
    """Spans for every statement of ``engine`` (an ``AsyncEngine`` or a plain one), child of the current span.

    ``SQLAlchemyInstrumentor().instrument(engine=...)`` instruments only the first engine of a process (an
    instrumentor runs once), so each engine gets its own ``EngineTracer``, as that call would build.
    """
    sync_engine = getattr(engine, "sync_engine", engine)
    if getattr(sync_engine, "_tidings_traced", False):
        return
    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_instrumentation_version)
    usage = get_meter(
        "opentelemetry.instrumentation.sqlalchemy", sqlalchemy_instrumentation_version
    ).create_up_down_counter("db.client.connections.usage", unit="connections")
    EngineTracer(tracer, sync_engine, usage)  # type: ignore[no-untyped-call]
    sync_engine._tidings_traced = True


def instrument_redis(client: Any) -> None:
    """Spans for every command and pipeline of ``client`` (``redis.asyncio.Redis``)."""
    if not getattr(client, "_is_instrumented_by_opentelemetry", False):
        RedisInstrumentor.instrument_client(client)


# -- spans ----------------------------------------------------------------------------------------------------------


# One tracer for the process, taken once: ``get_tracer`` costs a warnings filter and a regex per call (a tenth of
# a busy bff's CPU when called per span). Taken before ``configure``, it is OpenTelemetry's proxy, which starts
# handing out the real provider's spans as soon as one is installed.
_PROCESS_TRACER = trace.get_tracer(_TRACER)


def _tracer() -> trace.Tracer:
    return _PROCESS_TRACER


@contextmanager
def server_span(name: str, carrier: Mapping[str, str], *, trusted: bool = True, **attributes: Any) -> Iterator[Span]:
    """A SERVER span for one incoming call, child of the caller's span when ``carrier`` (headers) names one.

    An untrusted caller (a client on a public port) gets a new trace instead, with its span as a link only: a
    client must not choose the trace id that error bodies and log lines quote, nor the sampling decision.
    Exceptions are the caller's to record: the middleware turns them into statuses, which are not crashes.
    """
    if trusted and _unsampled(carrier):
        with _continuing(carrier) as span:
            yield span
        return
    parent = propagate.extract(carrier) if trusted else otel_context.Context()
    caller = None if trusted else caller_link(carrier)
    with _tracer().start_as_current_span(
        name,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes or None,
        links=[caller] if caller is not None else None,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


@contextmanager
def http_server_span(scope: Mapping[str, Any]) -> Iterator[Span]:
    """The SERVER span of one HTTP request or WebSocket connection (an ASGI ``scope``), child of the span its
    ``traceparent`` header names, if any. Named by the method until ``http_route`` names its route. Attributes are
    set only on a span that records: an unsampled request pays for its ids and nothing more.

    Ours rather than FastAPI's telemetry, which builds every attribute of every request before sampling decides.
    """
    carrier = http_carrier(scope.get("headers", ()))
    parent = propagate.extract(carrier) if carrier else otel_context.Context()
    websocket = scope["type"] == "websocket"
    method = _span_method(scope)
    span = _tracer().start_span(method, context=parent, kind=SpanKind.SERVER)
    if span.is_recording():
        attributes: dict[str, Any] = {
            "url.scheme": str(scope.get("scheme", "ws" if websocket else "http")),
            "url.path": str(scope.get("path", "")),
        }
        if not websocket:
            attributes["http.request.method"] = method
        if scope.get("http_version"):
            attributes["network.protocol.version"] = str(scope["http_version"])
        for side, address in (("client", scope.get("client")), ("server", scope.get("server"))):
            if address:
                attributes[f"{side}.address"] = str(address[0])
                if isinstance(address[1], int):
                    attributes[f"{side}.port"] = address[1]
        span.set_attributes(attributes)
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        yield span


def http_route(span: Span, scope: Mapping[str, Any], route: str | None, status: int | None = None) -> None:
    """Name ``span`` (from ``http_server_span(scope)``) by its route, and note the status it answered."""
    if not span.is_recording():
        return
    if route is not None:
        span.update_name(f"{_span_method(scope)} {route}")
        span.set_attribute("http.route", route)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(StatusCode.ERROR)


def http_carrier(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The trace context headers among an ASGI request's ``headers``."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers if name in HTTP_TRACE_HEADERS}


def _span_method(scope: Mapping[str, Any]) -> str:
    return "WS" if scope["type"] == "websocket" else str(scope.get("method", "HTTP"))


def caller_link(carrier: Mapping[str, str]) -> Link | None:
    """A link to the span an untrusted caller named in ``carrier`` (``traceparent``), or None if it named none."""
    context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return Link(context) if context.is_valid else None


def start_client_span(name: str, **attributes: Any) -> tuple[Span, dict[str, str]]:
    """A CLIENT span (child of the current one) for an outgoing call, and the headers that carry it.

    The caller ends the span when the call is over (a streamed answer outlives the function that started it).
    """
    current = trace.get_current_span().get_span_context()
    if current.is_valid and not current.trace_flags.sampled:
        # In an unsampled trace the span could only be a non-recording one: pass the current context on instead.
        span: Span = trace.NonRecordingSpan(current)
    else:
        span = _tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attributes or None)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return span, carrier


def inject(carrier: MutableMapping[str, str]) -> None:
    """Put the current span's context into outgoing headers, so the callee's span joins this trace."""
    propagate.inject(carrier)


def current_span() -> Span:
    """The span the current code runs in (a non-recording one outside any trace)."""
    return trace.get_current_span()


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits, or ``""`` outside any recorded trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def fail(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed by ``error`` (an unexpected one: a bug or an outage)."""
    span.record_exception(error)
    span.set_status(StatusCode.ERROR, type(error).__name__)


# -- the event bus --------------------------------------------------------------------------------------------------


def _header_carrier(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in headers if name in TRACE_HEADERS}


@contextmanager
def _continuing(carrier: Mapping[str, str]) -> Iterator[Span]:
    """Run in the context ``carrier`` names, without a span of our own: its trace is not sampled, so every span
    made in it could only be a non-recording one. The trace id still reaches logs, error bodies and the next hop,
    at a fraction of a span's cost."""
    token = otel_context.attach(propagate.extract(carrier))
    try:
        yield trace.get_current_span()
    finally:
        otel_context.detach(token)


def _unsampled(carrier: Mapping[str, str]) -> bool:
    """Whether ``carrier`` names a span that was not sampled (W3C ``traceparent`` flags without bit 0): every span
    continuing it would be a non-recording one, so hot paths pass its context on instead of making spans."""
    flags = carrier.get("traceparent", "")[53:]
    return len(flags) == 2 and flags in _UNSAMPLED_FLAGS


_UNSAMPLED_FLAGS = frozenset(f"{flags:02x}" for flags in range(0, 256, 2))


class Producing:
    """The PRODUCER spans of one ``publish_many``: ``events`` carry them in their headers; ``done`` ends them.

    An event continues the trace named by its own ``traceparent`` header, else the current one; an event with
    neither is published untouched.
    """

    def __init__(self, system: str, events: Sequence[Event]) -> None:
        self.events: list[Event] = []
        # Each span with the index of its event, whose position ``done`` learns.
        self._spans: list[tuple[int, Span]] = []
        tracer = _tracer()
        traced_here = trace.get_current_span().get_span_context().is_valid
        for index, event in enumerate(events):
            carrier = _header_carrier(event.headers)
            if (not carrier and not traced_here) or _unsampled(carrier):
                # Published outside any trace (a test, a tool): the record goes as it is, without a root span. Or
                # in a trace that is not sampled: its consumers continue the same trace id from these headers.
                self.events.append(event)
                continue
            # Each event continues the trace it was made in (the envelope's traceparent): a batch can join sends
            # of several requests.
            parent = propagate.extract(carrier) if carrier else None
            span = tracer.start_span(
                f"send {event.topic}",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": system,
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "send",
                    "messaging.destination.name": event.topic,
                    "messaging.message.body.size": len(event.value),
                },
            )
            headers: dict[str, str] = {}
            propagate.inject(headers, context=trace.set_span_in_context(span))
            kept = tuple((name, value) for name, value in event.headers if name not in TRACE_HEADERS)
            traced = kept + tuple((name, headers[name].encode()) for name in TRACE_HEADERS if name in headers)
            self.events.append(Event(event.topic, event.key, event.value, traced))
            self._spans.append((index, span))

    def done(self, published: Sequence[Published]) -> None:
        for index, span in self._spans:
            if index < len(published):
                span.set_attribute("messaging.destination.partition.id", str(published[index].partition))
                span.set_attribute("messaging.kafka.offset", published[index].offset)
        self.end()

    def failed(self, error: BaseException) -> None:
        for _, span in self._spans:
            fail(span, error)
        self.end()

    def end(self) -> None:
        for _, span in self._spans:
            if span.is_recording():
                span.end()


@contextmanager
def producing(system: str, events: Sequence[Event]) -> Iterator[Producing]:
    """PRODUCER spans around publishing ``events``: publish ``.events`` (re-headered), then call ``.done``."""
    spans = Producing(system, events)
    try:
        yield spans
    except BaseException as error:
        spans.failed(error)
        raise
    finally:
        spans.end()


@contextmanager
def consuming(system: str, group: str, records: Sequence[Record]) -> Iterator[Span]:
    """CONSUMER spans for handling ``records``; the handler runs in the first one (its DB and gRPC spans go there).

    Each distinct producer context among ``records`` gets a span of its own as its child, so every trace shows its
    records being handled; the others link to the one that is current.
    """
    tracer = _tracer()
    # Sampled contexts only: an unsampled one would make a non-recording span.
    contexts: dict[str, dict[str, str]] = {}
    for record in records:
        carrier = _header_carrier(record.headers)
        if not _unsampled(carrier):
            contexts.setdefault(carrier.get("traceparent", ""), carrier)
    if not contexts and records:
        # No record's trace is sampled: the handler runs in the first one's, so its log lines still name a trace.
        with _continuing(_header_carrier(records[0].headers)) as span:
            yield span
        return
    topics = sorted({record.topic for record in records})
    attributes: dict[str, Any] = {
        "messaging.system": system,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": ",".join(topics),
        "messaging.consumer.group.name": group,
        "messaging.batch.message_count": len(records),
    }
    name = f"process {topics[0] if len(topics) == 1 else 'batch'}"
    carriers = list(contexts.values()) or [{}]
    first = propagate.extract(carriers[0]) if carriers[0] else otel_context.Context()
    with tracer.start_as_current_span(name, context=first, kind=SpanKind.CONSUMER, attributes=attributes) as main:
        others = [
            tracer.start_span(
                name,
                context=propagate.extract(carrier),
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=[Link(main.get_span_context())],
            )
            for carrier in carriers[1:]
            if carrier
        ]
        try:
            yield main
        except BaseException as error:
            for span in others:
                fail(span, error)
            raise
        finally:
            for span in others:
                span.end()
