"""What every answer of an API app (the bff's, the back office's) tells a browser: nosniff, no referrer, a policy
that forbids framing (the web pages keep their own), and CORS only for the origins configured."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import Message

from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg.middleware.browser import API_CONTENT_SECURITY_POLICY
from tidings.pkg.transport import web
from tidings.pkg.transport.http import api_app

PAGE = "https://chat.example.com"
MAX_BODY_BYTES = 1 << 20


class Note(BaseModel):
    text: str


def routes() -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.websocket("/ws")
    async def refuse(websocket: WebSocket) -> None:
        """A handshake refused as the bff refuses a bad token: the answer is an HTTP response, not a socket."""
        await websocket.send_denial_response(JSONResponse({"error": "no"}, status_code=401))

    @api.get("/notes/{note_id}")
    async def note(note_id: int) -> Note:
        if note_id == 404:
            raise chat_errors.conversation_not_found("no such note")
        if note_id == 500:
            raise RuntimeError("boom")
        return Note(text="hello")

    @api.post("/notes")
    async def add(body: Note) -> Note:
        return body

    return api


def app_client(cors_origins: Sequence[str] = ()) -> httpx.AsyncClient:
    app = api_app("test", "test", [], request_timeout_s=5, routers=[routes()], cors_origins=cors_origins)
    web.install(app, "tidings.admin", at="/admin")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as client:
        yield client


def assert_secured(answer: httpx.Response, policy: str = API_CONTENT_SECURITY_POLICY) -> None:
    assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
    assert answer.headers["referrer-policy"] == "no-referrer", answer.request.url
    assert answer.headers.get_list("content-security-policy") == [policy], answer.request.url
    assert "frame-ancestors 'none'" in policy


async def test_every_api_answer_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/v1/notes/1"),  # 200
        await client.get("/v1/notes/404"),  # an error of ours
        await client.get("/v1/notes/500"),  # the last resort's 500
        await client.get("/v1/notes/x"),  # validation
        await client.post("/v1/notes", content=b"x" * (MAX_BODY_BYTES + 1)),  # the body bound
        await client.get("/nowhere"),  # no route
        await client.get("/healthz"),
        await client.get("/openapi.json"),
    ]
    assert [answer.status_code for answer in answers] == [200, 404, 500, 400, 400, 404, 200, 200]
    for answer in answers:
        assert_secured(answer)


async def test_a_refused_websocket_handshake_carries_them_too() -> None:
    app = api_app("test", "test", [], request_timeout_s=5, routers=[routes()])
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "scheme": "ws",
        "path": "/v1/ws",
        "raw_path": b"/v1/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"t")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    [start] = [message for message in sent if message["type"] == "websocket.http.response.start"]
    assert start["status"] == 401
    assert_secured(httpx.Response(start["status"], headers=start["headers"]))


async def test_the_web_pages_keep_their_own_policy_and_get_the_other_headers(client: httpx.AsyncClient) -> None:
    for path in ("/admin/", "/admin/web/console.js"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert_secured(answer, web.CONTENT_SECURITY_POLICY)
    assert_secured(await client.get("/admin/web/missing.js"))


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/notes/1", headers={"origin": PAGE})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    preflight = await client.options("/v1/notes/1", headers={"origin": PAGE, "access-control-request-method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_answers_the_origins_configured_and_no_other_without_credentials() -> None:
    async with app_client(cors_origins=[PAGE]) as client:
        preflight = await client.options(
            "/v1/notes",
            headers={
                "origin": PAGE,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == PAGE
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers
        assert_secured(preflight)

        answer = await client.get("/v1/notes/404", headers={"origin": PAGE})
        assert answer.status_code == 404
        assert answer.headers["access-control-allow-origin"] == PAGE
        assert "retry-after" in answer.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-credentials" not in answer.headers

        stranger = await client.get("/v1/notes/1", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        refused = await client.options(
            "/v1/notes/1", headers={"origin": "https://evil.example", "access-control-request-method": "GET"}
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers


def test_any_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="'\\*' is not allowed"):
        app_client(cors_origins=["*"])
