"""What the bff's public HTTP port shows an outsider: no metrics, no CDN-loaded docs pages, ``HEAD /``, and traces
that a client cannot steer (its trace context is linked, not continued) or read tokens from."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.unit.bff.fakes import FakeAccounts, FakeChats, FakePresence, local_quotas
from tidings.bff import server
from tidings.bff.biz.usecase import Sync
from tidings.bff.service.http import router
from tidings.pkg import log
from tidings.pkg.transport import web

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01"


def public_app(*, docs: bool = False) -> httpx.AsyncClient:
    accounts, chats = FakeAccounts(), FakeChats()
    app = server.http_app(
        [],
        request_timeout_s=5,
        docs=docs,
        routers=[router(accounts, chats, Sync(accounts, chats, FakePresence(), log.get("bff.sync")), local_quotas())],
    )
    web.install(app, "tidings.bff")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=server.public(app)), base_url="http://bff")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with public_app() as client:
        yield client


async def test_metrics_are_not_served_on_the_public_port(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/healthz")).status_code == 200


async def test_the_cdn_loaded_docs_pages_are_off_by_default_and_the_openapi_document_stays(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 200
    async with public_app(docs=True) as developer:
        assert (await developer.get("/docs")).status_code == 200


async def test_head_of_the_page_answers_200_like_get(client: httpx.AsyncClient) -> None:
    head = await client.head("/")
    assert head.status_code == 200
    assert head.headers["content-security-policy"] == web.CONTENT_SECURITY_POLICY


async def test_a_clients_traceparent_is_linked_not_continued(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    answer = await client.get("/v1/me", headers={"traceparent": TRACEPARENT})
    assert answer.status_code == 401
    trace_id = answer.json()["error"]["trace_id"]
    assert trace_id
    assert trace_id != CALLER_TRACE_ID
    [span] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is None
    assert [format(link.context.trace_id, "032x") for link in span.links] == [CALLER_TRACE_ID]


async def test_a_token_in_the_query_reaches_neither_the_access_log_nor_a_span(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    """Only the WebSocket handshake takes a token in its URL; wherever one turns up, it is never written down."""
    stream = io.StringIO()
    log.configure(service_name="tidings-test", service_version="0", stream=stream)
    secrets = ["first-secret-token", "second-secret-token", "third-secret-token"]
    answers = [
        await client.get(f"/v1/me?token={secrets[0]}&x=1"),
        await client.get(f"/v1/nowhere?access_token={secrets[1]}"),
        await client.get(f"/healthz?refresh_token={secrets[2]}"),
    ]
    assert [answer.status_code for answer in answers] == [401, 404, 200]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["event"]["dataset"].endswith(".access")]
    assert [line["url"]["path"] for line in access] == ["/v1/me", "/v1/nowhere"]  # /healthz is not logged
    server_spans = [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert len(server_spans) == 3
    for span in server_spans:
        assert span.attributes is not None
        assert "=REDACTED" in str(span.attributes["url.query"])
    assert "x=1" in str(server_spans[0].attributes["url.query"])
    written = stream.getvalue() + "".join(span.to_json() for span in spans.get_finished_spans())
    for secret in secrets:
        assert secret not in written
