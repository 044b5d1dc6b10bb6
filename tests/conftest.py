"""Fixtures every suite shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.pkg import trace


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes during the test, kept in memory."""
    provider = otel_trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = trace.configure("tidings-test")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
def statements() -> AsyncEngine | None:
    """The autocommit engine repositories run reads and one-statement writes on: none where one engine serves all
    (SQLite); the MariaDB suites give theirs."""
    return None
