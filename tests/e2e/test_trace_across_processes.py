"""Traces across real processes: bff, account, chat and job each run as ``tidings serve <module>`` on MariaDB,
Redis and Kafka and append their spans to one JSON-lines file (``trace.exporter: file``); one send is one trace
id in all of them. Their log lines are ECS JSON, and the lines of that request carry the same trace id.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tests.e2e.client import Client, Device
from tests.e2e.conftest import fresh_database
from tests.e2e.fleet import ROOT, Fleet

ECS_FIELDS = ("@timestamp", "log.level", "message", "service.name", "service.version", "event.dataset")


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _flat(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """ECS nests dotted names (``{"service": {"name": ...}}``); flatten them back to ``service.name``."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value
    return flat


async def test_one_send_is_one_trace_in_bff_chat_and_job_processes(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    async with fresh_database() as database_url:
        fleet = Fleet(
            ROOT / "configs" / "stack.yaml",
            tmp_path,
            env={
                "TIDINGS_DATABASE__URL": database_url,
                "TIDINGS_TRACE__EXPORTER": "file",
                "TIDINGS_TRACE__PATH": str(traces),
                # Every trace kept: the test follows one send through every process.
                "TIDINGS_TRACE__SAMPLE_RATIO": "1.0",
            },
        )
        client = Client()
        try:
            for module in ("account", "chat", "job", "bff"):
                await fleet.start(module)
            alice, bob = await client.register("alice"), await client.register("bob")
            conv = await client.direct(alice, bob)
            # Bob online, so the push job has a socket to deliver to and the trace reaches the bff again.
            device = Device("ws://127.0.0.1:8080/v1/ws", bob)
            await device.connect()
            sent = await client.send(alice, conv["id"], "hello across processes")
            assert sent.status_code == 201, sent.text
            trace_id = ""
            await client.wait_for_max_seq(bob, conv["id"], sent.json()["message"]["seq"])

            route = "POST /v1/conversations/{conversation_id}/messages"
            services: set[str] = set()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                spans = _spans(traces)
                roots = [s for s in spans if s["name"] == route and s["kind"] == "SpanKind.SERVER"]
                if roots:
                    trace_id = roots[-1]["context"]["trace_id"]
                    services = {
                        s["resource"]["attributes"]["service.name"]
                        for s in spans
                        if s["context"]["trace_id"] == trace_id
                    }
                    # Spans are written when they end, a consumer's after its children: wait for the whole path.
                    kinds_now = {
                        (s["resource"]["attributes"]["service.name"], s["kind"])
                        for s in spans
                        if s["context"]["trace_id"] == trace_id
                    }
                    delivered = any(
                        s["context"]["trace_id"] == trace_id
                        and s["name"] == "tidings.gateway.v1.DeliveryService/Deliver"
                        and s["resource"]["attributes"]["service.name"] == "tidings-bff"
                        for s in spans
                    )
                    # Persist and push consume independently: either may end its span after the other delivered.
                    groups_now = {
                        str(s.get("attributes", {}).get("messaging.consumer.group.name")).rsplit(".", 1)[-1]
                        for s in spans
                        if s["context"]["trace_id"] == trace_id and s["kind"] == "SpanKind.CONSUMER"
                    }
                    if (
                        {"tidings-bff", "tidings-chat", "tidings-job"} <= services
                        and {("tidings-job", "SpanKind.CONSUMER"), ("tidings-bff", "SpanKind.SERVER")} <= kinds_now
                        and {"persist", "push"} <= groups_now
                        and delivered
                    ):
                        break
                await asyncio.sleep(0.3)
            assert {"tidings-bff", "tidings-chat", "tidings-job"} <= services, services
            in_trace = [s for s in _spans(traces) if s["context"]["trace_id"] == trace_id]
            kinds = {(s["resource"]["attributes"]["service.name"], s["kind"]) for s in in_trace}
            assert ("tidings-chat", "SpanKind.PRODUCER") in kinds
            assert ("tidings-job", "SpanKind.CONSUMER") in kinds
            # The whole path in one trace: persist's MariaDB write, push's consume and its Deliver to the bff.
            by_service = {(s["resource"]["attributes"]["service.name"], s["name"]): s for s in in_trace}
            groups = {
                s.get("attributes", {}).get("messaging.consumer.group.name")
                for s in in_trace
                if s["kind"] == "SpanKind.CONSUMER"
            }
            # The fleet's bus namespace prefixes its groups ("<namespace>.persist").
            assert {"persist", "push"} <= {str(group).rsplit(".", 1)[-1] for group in groups}, groups
            assert any(
                service == "tidings-job"
                and str(span.get("attributes", {}).get("db.statement", "")).startswith("INSERT INTO messages")
                for (service, _), span in by_service.items()
            )
            assert ("tidings-bff", "tidings.gateway.v1.DeliveryService/Deliver") in by_service
            assert not await device.wait_for({sent.json()["message"]["id"]}, 10)
        finally:
            await device.close()
            await client.close()
            await fleet.close()

    # Every line every process wrote is ECS JSON; the request's lines share its trace id.
    hex_id = str(trace_id).removeprefix("0x")
    request_lines = []
    for name in ("account", "chat", "job", "bff"):
        for line in fleet.processes[name].log.read_text().splitlines():
            if not line.startswith("{"):
                continue  # the start-up banner goes to stderr for people, not collectors
            document = _flat(json.loads(line))
            missing = [field for field in ECS_FIELDS if field not in document]
            assert not missing, f"{name}: {missing} missing in {line}"
            if document.get("trace.id") == hex_id:
                assert "span.id" in document
                request_lines.append(document)
    datasets = {line["event.dataset"] for line in request_lines}
    assert {"tidings-bff.access", "tidings-chat.access"} <= datasets, datasets
