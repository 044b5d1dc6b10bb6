"""The HTTP middleware on a FastAPI app that calls the test gRPC servers, as the bff does."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError

from tests.unit.pkg.middleware.conftest import (
    DATABASE_DOWN,
    EXPLODE,
    REASONS,
    REQUEST_TIMEOUT_S,
    Stack,
    conversation_id,
    raised,
)
from tidings.api.chat.v1 import chat_pb2
from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg import log
from tidings.pkg.errors import Reason
from tidings.pkg.middleware import deadline, http

MAX_BODY_BYTES = 1000


class NewGroup(BaseModel):
    kind: Literal["group"]
    title: str
    member_ids: list[int]


class NewMessage(BaseModel):
    client_msg_id: str
    text: str


def bff(stack: Stack) -> FastAPI:
    """A few routes in the bff's manner: each calls the chat service over gRPC and returns what it answers."""
    app = FastAPI()
    http.install(app, request_timeout_s=REQUEST_TIMEOUT_S, max_body_bytes=MAX_BODY_BYTES)

    @app.get("/v1/conversations/{conversation_id}")
    async def get_conversation(conversation_id: int) -> dict[str, object]:
        response = await stack.chat.GetConversation(
            chat_pb2.GetConversationRequest(user_id=1, conversation_id=conversation_id)
        )
        return {"id": str(response.conversation.id), "title": response.conversation.title}

    @app.post("/v1/conversations/{conversation_id}/messages", status_code=201)
    async def send(conversation_id: int, body: NewMessage) -> dict[str, object]:
        request = chat_pb2.SendMessageRequest(
            conversation_id=conversation_id, sender_id=7, client_msg_id=body.client_msg_id, text=body.text
        )
        response = await stack.chat.SendMessage(request)
        return {"text": response.message.text}

    @app.post("/v1/conversations")
    async def create(body: NewGroup) -> dict[str, object]:
        return {"title": body.title}

    @app.get("/v1/pair/{first}/{second}")
    async def pair(first: int, second: int) -> dict[str, object]:
        """Two look-ups side by side, as a use case's task group runs them; a second of 0 is a bug of ours."""

        async def look_up(conversation_id: int) -> None:
            if conversation_id == 0:
                raise RuntimeError("password=hunter2")
            request = chat_pb2.GetConversationRequest(user_id=1, conversation_id=conversation_id)
            await stack.chat.GetConversation(request)

        async with asyncio.TaskGroup() as group:
            group.create_task(look_up(first))
            group.create_task(look_up(second))
        return {}

    @app.get("/v1/deadline")
    async def time_left() -> dict[str, object]:
        return {"remaining": deadline.remaining()}

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2")

    @app.get("/v1/database-down")
    async def database_down() -> None:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("password=hunter2"))

    return app


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=bff(stack))
    async with httpx.AsyncClient(transport=transport, base_url="http://bff") as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, object]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert set(error) == {"code", "reason", "message", "metadata", "trace_id"}
    assert error["code"] == response.status_code
    trace_id = error["trace_id"]
    assert isinstance(trace_id, str)
    assert len(trace_id) == 32
    assert int(trace_id, 16) != 0
    return error


@pytest.mark.parametrize("reason", REASONS, ids=lambda reason: reason.name)
async def test_an_error_from_grpc_reaches_the_http_client_unchanged(client: httpx.AsyncClient, reason: Reason) -> None:
    response = await client.get(f"/v1/conversations/{REASONS.index(reason) + 1}")
    expected = raised(reason)
    assert response.status_code == expected.code
    error = error_of(response)
    assert (error["reason"], error["message"], error["metadata"]) == (
        expected.reason,
        expected.message,
        expected.metadata,
    )


async def test_the_bodys_nested_field_is_named_by_dotted_path(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/conversations", json={"kind": "group", "title": "t", "member_ids": [1, 2, 3, "x"]}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert (error["reason"], error["metadata"]) == ("INVALID_ARGUMENT", {"field": "member_ids.3"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "group", "member_ids": []}, "title"),
        ({"kind": "channel", "title": "t", "member_ids": []}, "kind"),
        ({"kind": "group", "title": ["t"], "member_ids": "1,2"}, "title,member_ids"),
    ],
    ids=["missing", "unknown enum value", "wrong types"],
)
async def test_bad_input_names_the_field(client: httpx.AsyncClient, body: dict[str, object], field: str) -> None:
    response = await client.post("/v1/conversations", json=body)
    assert response.status_code == 400
    assert error_of(response)["metadata"] == {"field": field}


async def test_malformed_json_is_a_bad_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/conversations", content=b'{"kind": "group",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["metadata"] == {"field": "body"}


async def test_a_non_numeric_path_id_is_a_bad_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/conversations/abc")
    assert response.status_code == 400
    error = error_of(response)
    assert (error["reason"], error["metadata"]) == ("INVALID_ARGUMENT", {"field": "conversation_id"})


async def test_a_rule_of_the_contract_names_the_field_through_grpc(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/conversations/5/messages", json={"client_msg_id": "m-1", "text": ""})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["reason"], error["metadata"]) == ("INVALID_ARGUMENT", {"field": "text"})


async def test_an_unknown_route_or_method_is_not_found(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/v1/nowhere"), await client.put("/v1/conversations/5")):
        assert response.status_code == 404
        assert error_of(response)["reason"] == "NOT_FOUND"


async def test_an_unexpected_exception_is_internal_with_the_trace_id_and_no_internals(
    client: httpx.AsyncClient,
) -> None:
    stream = io.StringIO()
    log.configure(service_name="tidings-test", service_version="0", stream=stream)
    response = await client.get("/v1/boom")
    assert response.status_code == 500
    error = error_of(response)
    assert (error["reason"], error["message"], error["metadata"]) == ("INTERNAL", "internal error", {})
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    [line] = [line for line in map(json.loads, stream.getvalue().splitlines()) if line["log.level"] == "error"]
    assert line["trace"]["id"] == error["trace_id"]
    assert "RuntimeError: password=hunter2" in line["error"]["stack_trace"]


async def test_a_task_group_whose_calls_failed_with_our_errors_answers_the_first_and_any_other_failure_is_500(
    client: httpx.AsyncClient,
) -> None:
    missing = conversation_id(chat_errors.CONVERSATION_NOT_FOUND)
    both_missing = await client.get(f"/v1/pair/{missing}/{missing}")
    assert both_missing.status_code == 404
    assert error_of(both_missing)["reason"] == "CONVERSATION_NOT_FOUND"
    with_a_bug = await client.get(f"/v1/pair/{missing}/0")
    assert with_a_bug.status_code == 500
    assert error_of(with_a_bug)["reason"] == "INTERNAL"
    assert "hunter2" not in with_a_bug.text


async def test_an_unreachable_database_here_or_downstream_is_unavailable_not_internal(
    client: httpx.AsyncClient,
) -> None:
    for response in (await client.get("/v1/database-down"), await client.get(f"/v1/conversations/{DATABASE_DOWN}")):
        assert response.status_code == 503
        error = error_of(response)
        assert (error["reason"], error["message"]) == ("UNAVAILABLE", "the database is unavailable; retry shortly")
        assert "hunter2" not in response.text


async def test_an_unexpected_exception_downstream_is_internal_too(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/conversations/{EXPLODE}")
    assert response.status_code == 500
    error = error_of(response)
    assert error["reason"] == "INTERNAL"
    assert "hunter2" not in response.text
    # One trace from the HTTP request through the gRPC call: the downstream names the same trace id.
    assert error["metadata"] == {"trace_id": error["trace_id"]}


async def test_an_oversized_body_is_a_bad_body(client: httpx.AsyncClient) -> None:
    big = {"client_msg_id": "m-1", "text": "a" * MAX_BODY_BYTES}
    response = await client.post("/v1/conversations/5/messages", json=big)
    assert response.status_code == 400
    assert error_of(response)["metadata"] == {"field": "body"}

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: the bound is counted as the body arrives
        yield json.dumps(big).encode()

    response = await client.post(
        "/v1/conversations/5/messages", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["metadata"] == {"field": "body"}


async def test_a_request_runs_under_the_request_timeout(client: httpx.AsyncClient) -> None:
    remaining = (await client.get("/v1/deadline")).json()["remaining"]
    assert 0 < remaining <= REQUEST_TIMEOUT_S


async def test_a_success_is_untouched(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/conversations/5/messages", json={"client_msg_id": "m-1", "text": "hi"})
    assert (response.status_code, response.json()) == (201, {"text": "hi"})
    assert chat_errors.CONVERSATION_NOT_FOUND.code == 404
