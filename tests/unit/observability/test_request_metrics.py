"""RED metrics of the HTTP middleware: counted by templated route, status and reason, never by raw URL."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import metrics
from tidings.pkg.middleware import http as http_middleware


async def test_http_requests_are_counted_by_route_template_code_and_reason() -> None:
    registry = CollectorRegistry()
    app = FastAPI()
    http_middleware.install(app, request_timeout_s=5, request_metrics=metrics.RequestMetrics(registry))

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 404:
            raise common_errors.not_found("no such thing")
        return {"id": thing_id}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/v1/things/1")).status_code == 200
        assert (await client.get("/v1/things/2")).status_code == 200
        assert (await client.get("/v1/things/404")).status_code == 404

    def count(code: str, reason: str) -> float | None:
        labels = {"method": "GET", "route": "/v1/things/{thing_id}", "code": code, "reason": reason}
        return registry.get_sample_value("tidings_http_server_requests_total", labels)

    assert count("200", "") == 2
    assert count("404", "NOT_FOUND") == 1
    labels = {"method": "GET", "route": "/v1/things/{thing_id}"}
    assert registry.get_sample_value("tidings_http_server_request_duration_seconds_count", labels) == 3


def test_grpc_method_names_split_into_service_and_method() -> None:
    assert metrics.split_method("/tidings.chat.v1.ChatService/SendMessage") == (
        "tidings.chat.v1.ChatService",
        "SendMessage",
    )
