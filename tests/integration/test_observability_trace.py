"""One message send, followed through every module of one process (``tidings dev`` wiring on the embedded
adapters): a single trace holds the bff's HTTP span, the chat call (client and server), the bus produce, the
persist job's consume span and its database write, and the push job's consume span with its ``Deliver`` call.

Needs no server: SQLite, the embedded log and in-process caches, on free ports.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from tests.e2e.client import Device, Person
from tidings.bench.system import free_port
from tidings.bff import wire as bff_wire
from tidings.bootstrap import Infra
from tidings.conf import AccountConf, AuthConf, BffConf, ChatConf, JobConf, Modules, Settings
from tidings.job import wire as job_wire
from tidings.pkg.app import App
from tidings.pkg.conf import BusConf, CacheConf, DatabaseConf, Listen, SearchConf
from tidings.service.account import wire as account_wire
from tidings.service.chat import wire as chat_wire


def _account() -> AccountConf:
    return AccountConf(http=Listen(port=free_port()), grpc=Listen(port=free_port()))


def _chat() -> ChatConf:
    return ChatConf(http=Listen(port=free_port()), grpc=Listen(port=free_port()))


def _bff() -> BffConf:
    return BffConf(
        http=Listen(port=free_port()),
        grpc=Listen(port=free_port()),
        internal_grpc=Listen(port=free_port()),
        metrics=Listen(port=free_port()),
    )


@pytest.fixture
async def bff_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """account, chat, job and bff wired as ``tidings dev`` wires them, serving on free ports."""
    settings = Settings(
        modules=Modules(bff=_bff(), account=_account(), chat=_chat(), job=JobConf(http=Listen(port=free_port()))),
        database=DatabaseConf(url=f"sqlite+aiosqlite:///{tmp_path}/tidings.db"),
        cache=CacheConf(url="memory://"),
        bus=BusConf(kind="embedded", path=str(tmp_path / "events.db")),
        search=SearchConf(url=str(tmp_path / "search.db")),
        auth=AuthConf(
            jwt_secret=SecretStr("observability-test-secret-0123456789abcdef"),
            internal_secret=SecretStr("observability-internal-secret-0123456789ab"),
        ),
    )
    # Each module's metrics go to a registry of this test: the process's default one may hold them already.
    monkeypatch.setattr(bff_wire, "REGISTRY", CollectorRegistry())
    infra = Infra(settings)
    modules = [
        await account_wire.wire(infra, registry=CollectorRegistry()),
        await chat_wire.wire(infra, registry=CollectorRegistry()),
        await job_wire.wire(infra, registry=CollectorRegistry()),
        await bff_wire.wire(infra),
    ]
    app = App(
        "tidings-test",
        [server for module in modules for server in module.servers],
        resources=infra.resources(),
        cleanups=[infra.close],
        stop_timeout_s=10,
    )
    up = asyncio.Event()
    running = asyncio.create_task(app.run(ready=up.set, handle_signals=False))
    waiting = asyncio.create_task(up.wait())
    await asyncio.wait([running, waiting], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()
    try:
        yield f"http://127.0.0.1:{settings.modules.bff.http.port}"
    finally:
        app.stop()
        await running


async def _register(http: httpx.AsyncClient, prefix: str) -> Person:
    username = f"{prefix}_{uuid.uuid4().hex[:8]}"
    answer = await http.post("/v1/auth/register", json={"username": username, "password": "correct horse"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Person(body["user"]["id"], username, {"Authorization": f"Bearer {body['access_token']}"})


def _find(spans: list[ReadableSpan], kind: SpanKind, name: str, **attributes: str) -> ReadableSpan:
    found = [
        span
        for span in spans
        if span.kind == kind
        and span.name == name
        and all((span.attributes or {}).get(key) == value for key, value in attributes.items())
    ]
    assert found, f"no {kind.name} span {name!r} {attributes} among {sorted({s.name for s in spans})}"
    return found[0]


def _is_ancestor(ancestor: ReadableSpan, span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> bool:
    parent = span.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        above = by_id.get(parent.span_id)
        parent = above.parent if above is not None else None
    return False


async def test_one_send_is_one_trace_through_bff_chat_bus_persist_and_push(
    spans: InMemorySpanExporter, bff_url: str
) -> None:
    async with httpx.AsyncClient(base_url=bff_url, timeout=15) as http:
        alice, bob = await _register(http, "alice"), await _register(http, "bob")
        answer = await http.post("/v1/conversations", json={"kind": "direct", "peer_id": bob.id}, headers=alice.headers)
        assert answer.status_code in (200, 201), answer.text
        conversation_id = answer.json()["id"]
        device = Device(bff_url.replace("http", "ws", 1) + "/v1/ws", bob)
        await device.connect()
        try:
            spans.clear()
            sent = await http.post(
                f"/v1/conversations/{conversation_id}/messages",
                json={"client_msg_id": uuid.uuid4().hex, "text": "hello, traced"},
                headers=alice.headers,
            )
            assert sent.status_code == 201, sent.text
            message_id = sent.json()["message"]["id"]
            assert await device.wait_for({message_id}, timeout_s=15) == set()
        finally:
            await device.close()

    route = "/v1/conversations/{conversation_id}/messages"
    wanted = [
        (SpanKind.SERVER, f"POST {route}", {}),
        # The bff sends in batches (SendMessages): each send's own client span, and chat's span of that send.
        (SpanKind.CLIENT, "tidings.chat.v1.ChatService/SendMessages send", {}),
        (SpanKind.SERVER, "tidings.chat.v1.ChatService/SendMessages send", {}),
        (SpanKind.PRODUCER, "send chat.message.sent", {}),
        (SpanKind.CONSUMER, "process chat.message.sent", {"messaging.consumer.group.name": "persist"}),
    ]
    # Spans end after the answer (the persist and push spans a little later): wait until all are in.
    chain: list[ReadableSpan] = []
    for _ in range(100):
        finished = list(spans.get_finished_spans())
        try:
            chain = [_find(finished, kind, name, **attributes) for kind, name, attributes in wanted]
            push = _find(
                finished, SpanKind.CONSUMER, "process chat.message.sent", **{"messaging.consumer.group.name": "push"}
            )
            deliver_client = _find(finished, SpanKind.CLIENT, "tidings.gateway.v1.DeliveryService/Deliver")
            deliver_server = _find(finished, SpanKind.SERVER, "tidings.gateway.v1.DeliveryService/Deliver")
            break
        except AssertionError:
            await asyncio.sleep(0.1)
    else:
        finished = list(spans.get_finished_spans())
        chain = [_find(finished, kind, name, **attributes) for kind, name, attributes in wanted]
        raise AssertionError("push or Deliver spans missing")

    by_id = {span.context.span_id: span for span in finished}
    http_span, chat_client, chat_server, produce, persist = chain
    writes = [
        span
        for span in finished
        if span.kind == SpanKind.CLIENT
        and (span.attributes or {}).get("db.system", (span.attributes or {}).get("db.system.name")) == "sqlite"
        and _is_ancestor(persist, span, by_id)
    ]
    assert any("INSERT" in span.name.upper() for span in writes), [span.name for span in writes]

    trace_id = http_span.context.trace_id
    everything = [*chain, writes[0], push, deliver_client, deliver_server]
    assert {span.context.trace_id for span in everything} == {trace_id}, "the send spans more than one trace"
    # Parent/child order along the message path.
    for parent, child in itertools.pairwise(chain):
        assert _is_ancestor(parent, child, by_id), f"{parent.name} is not above {child.name}"
    assert _is_ancestor(produce, push, by_id)
    assert _is_ancestor(push, deliver_client, by_id)
    assert _is_ancestor(deliver_client, deliver_server, by_id)
    assert (chat_server.attributes or {}).get("rpc.grpc.status_code") == "OK"
    assert (chat_client.attributes or {}).get("rpc.service") == "tidings.chat.v1.ChatService"
