"""The bff's REST layer as clients meet it: shapes, status codes, auth and input errors of API.md."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.unit.bff.fakes import FakeAccounts, FakeChats, FakePresence, local_quotas
from tidings.bff import server
from tidings.bff.biz.usecase import Sync
from tidings.bff.service.http import router
from tidings.pkg import log

# API.md's ``Message``.
MESSAGE_FIELDS = {"id", "conversation_id", "seq", "sender_id", "client_msg_id", "text", "created_at", "recalled"}


class Api:
    def __init__(self) -> None:
        self.accounts = FakeAccounts()
        self.chats = FakeChats()
        self.presence = FakePresence()
        app = server.http_app(
            [],
            request_timeout_s=5,
            routers=[
                router(
                    self.accounts,
                    self.chats,
                    Sync(self.accounts, self.chats, self.presence, log.get("bff.sync")),
                    local_quotas(),
                )
            ],
        )
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bff")

    async def user(self, name: str) -> tuple[str, dict[str, str]]:
        answer = await self.client.post("/v1/auth/register", json={"username": name, "password": "correct horse"})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return body["user"]["id"], {"Authorization": f"Bearer {body['access_token']}"}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    api = Api()
    yield api
    await api.client.aclose()


async def test_sign_up_answers_201_with_the_session_and_ids_as_strings(api: Api) -> None:
    answer = await api.client.post("/v1/auth/register", json={"username": "alice", "password": "correct horse"})
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"user", "access_token", "refresh_token", "expires_in"}
    assert isinstance(body["user"]["id"], str)
    assert body["user"]["created_at"].endswith("Z")
    again = await api.client.post("/v1/auth/register", json={"username": "alice", "password": "correct horse"})
    assert again.status_code == 409
    assert again.json()["error"]["reason"] == "USERNAME_TAKEN"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer forged"}],
)
async def test_missing_or_forged_tokens_are_401(api: Api, headers: dict[str, str]) -> None:
    answer = await api.client.get("/v1/me", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == 401


async def test_a_direct_conversation_is_created_once_then_returned_with_200(api: Api) -> None:
    _, alice = await api.user("alice")
    bob_id, _ = await api.user("bob")
    first = await api.client.post("/v1/conversations", json={"kind": "direct", "peer_id": bob_id}, headers=alice)
    second = await api.client.post("/v1/conversations", json={"kind": "direct", "peer_id": int(bob_id)}, headers=alice)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["title"] == ""
    assert first.json()["last_message"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "direct"}, "peer_id"),
        ({"kind": "direct", "peer_id": "abc"}, "peer_id"),
        ({"kind": "direct", "peer_id": -3}, "peer_id"),
        ({"kind": "direct", "peer_id": True}, "peer_id"),
        ({"kind": "group"}, "title"),
        ({"kind": "group", "title": "x", "member_ids": ["1", "x"]}, "member_ids.1"),
        ({"kind": "channel"}, "kind"),
    ],
)
async def test_bad_conversation_input_is_400_naming_the_field(api: Api, body: dict[str, object], field: str) -> None:
    _, alice = await api.user("alice")
    answer = await api.client.post("/v1/conversations", json=body, headers=alice)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["reason"] == "INVALID_ARGUMENT"
    assert error["metadata"]["field"] == field


async def test_send_answers_201_then_200_for_a_retry_with_the_same_message(api: Api) -> None:
    _, alice = await api.user("alice")
    bob_id, _ = await api.user("bob")
    conv = (
        await api.client.post("/v1/conversations", json={"kind": "direct", "peer_id": bob_id}, headers=alice)
    ).json()
    path = f"/v1/conversations/{conv['id']}/messages"
    first = await api.client.post(path, json={"client_msg_id": "c-1", "text": "hi"}, headers=alice)
    retry = await api.client.post(path, json={"client_msg_id": "c-1", "text": "hi"}, headers=alice)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json() == retry.json()
    assert first.json()["message"]["seq"] == 1


@pytest.mark.parametrize("path", ["/v1/conversations/abc", "/v1/conversations/0", "/v1/users/1e3"])
async def test_a_non_numeric_or_zero_id_in_a_path_is_400(api: Api, path: str) -> None:
    _, alice = await api.user("alice")
    answer = await api.client.get(path, headers=alice)
    assert answer.status_code == 400
    assert answer.json()["error"]["reason"] == "INVALID_ARGUMENT"


async def test_history_paging_is_checked_and_large_limits_are_capped(api: Api) -> None:
    _, alice = await api.user("alice")
    conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=alice)).json()
    path = f"/v1/conversations/{conv['id']}/messages"
    assert (await api.client.get(path, params={"limit": 5000}, headers=alice)).status_code == 200
    assert (await api.client.get(path, headers=alice)).status_code == 200
    assert api.chats.history_calls == [(None, None, 200), (None, None, 50)]
    both = await api.client.get(path, params={"after_seq": 1, "before_seq": 9}, headers=alice)
    assert both.status_code == 400
    zero = await api.client.get(path, params={"limit": 0}, headers=alice)
    assert zero.json()["error"]["metadata"]["field"] == "limit"


async def test_someone_elses_conversation_is_not_found(api: Api) -> None:
    _, alice = await api.user("alice")
    _, mallory = await api.user("mallory")
    conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=alice)).json()
    answer = await api.client.get(f"/v1/conversations/{conv['id']}", headers=mallory)
    assert answer.status_code == 404
    assert answer.json()["error"]["reason"] == "CONVERSATION_NOT_FOUND"


async def test_sync_returns_me_conversations_newest_first_and_peers_presence(api: Api) -> None:
    alice_id, alice = await api.user("alice")
    bob_id, _ = await api.user("bob")
    carol_id, _ = await api.user("carol")
    api.presence.online.add(int(bob_id))
    direct = (
        await api.client.post("/v1/conversations", json={"kind": "direct", "peer_id": bob_id}, headers=alice)
    ).json()
    group = (
        await api.client.post(
            "/v1/conversations", json={"kind": "group", "title": "g", "member_ids": [carol_id]}, headers=alice
        )
    ).json()
    answer = await api.client.get("/v1/sync", headers=alice)
    assert answer.status_code == 200
    body = answer.json()
    assert body["me"]["id"] == alice_id
    assert [c["id"] for c in body["conversations"]] == sorted([direct["id"], group["id"]], key=int, reverse=True)
    assert body["presence"] == {bob_id: "online", carol_id: "offline"}
    assert api.presence.asked == [sorted([int(bob_id), int(carol_id)])]


async def test_read_and_recall_answer_204(api: Api) -> None:
    _, alice = await api.user("alice")
    conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=alice)).json()
    sent = await api.client.post(
        f"/v1/conversations/{conv['id']}/messages", json={"client_msg_id": "c", "text": "oops"}, headers=alice
    )
    message_id = sent.json()["message"]["id"]
    read = await api.client.post(f"/v1/conversations/{conv['id']}/read", json={"seq": 1}, headers=alice)
    assert read.status_code == 204
    negative = await api.client.post(f"/v1/conversations/{conv['id']}/read", json={"seq": -1}, headers=alice)
    assert negative.json()["error"]["metadata"]["field"] == "seq"
    recalled = await api.client.delete(f"/v1/conversations/{conv['id']}/messages/{message_id}", headers=alice)
    assert recalled.status_code == 204


@pytest.mark.parametrize("seq", [2**53, 2**53 + 0.0, 2**63 - 1])
async def test_a_read_mark_past_what_the_document_allows_is_400_naming_seq(api: Api, seq: float) -> None:
    """The document bounds ``seq`` at 2**53 - 1 (what every JSON client holds exactly); the server holds to it."""
    _, alice = await api.user("alice")
    conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=alice)).json()
    answer = await api.client.post(f"/v1/conversations/{conv['id']}/read", json={"seq": seq}, headers=alice)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["metadata"]["field"] == "seq"


async def test_a_message_search_answers_messages_with_highlights_and_a_cursor(api: Api) -> None:
    _, alice = await api.user("alice")
    conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "t"}, headers=alice)).json()
    for n, text in enumerate(["Harbour at noon", "the market", "harbour again"]):
        body = {"client_msg_id": f"m{n}", "text": text}
        sent = await api.client.post(f"/v1/conversations/{conv['id']}/messages", json=body, headers=alice)
        assert sent.status_code == 201
    first = await api.client.get("/v1/search/messages", params={"query": "  harbour ", "limit": 1}, headers=alice)
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"messages", "next_cursor"}
    (found,) = body["messages"]
    assert set(found) == {*MESSAGE_FIELDS, "highlights", "sender_name"}
    assert found["text"] == "harbour again"
    assert found["highlights"] == [{"start": 0, "end": 7}]
    params = {"query": "harbour", "conversation_id": conv["id"], "cursor": body["next_cursor"]}
    second = (await api.client.get("/v1/search/messages", params=params, headers=alice)).json()
    assert [m["text"] for m in second["messages"]] == ["Harbour at noon"]
    # The query went to chat trimmed, the limit defaulted to 20.
    assert second["next_cursor"] is None
    assert api.chats.search_calls == [("harbour", None, None, 1), ("harbour", int(conv["id"]), body["next_cursor"], 20)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "x" * 257}, "query"),
        ({"query": " " * 100 + "x" * 257}, "query"),
        ({"query": "x" * 2000}, "query"),
        ({"query": "hi", "limit": 0}, "limit"),
        ({"query": "hi", "limit": 51}, "limit"),
        ({"query": "hi", "conversation_id": "abc"}, "conversation_id"),
        ({"query": "hi", "cursor": "not-ours"}, "cursor"),
        ({}, "query"),
    ],
)
async def test_a_bad_message_search_is_400_naming_the_field(api: Api, params: dict[str, str | int], field: str) -> None:
    _, alice = await api.user("alice")
    answer = await api.client.get("/v1/search/messages", params=params, headers=alice)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["metadata"]["field"] == field


async def test_a_query_of_256_characters_with_spaces_around_is_served(api: Api) -> None:
    _, alice = await api.user("alice")
    answer = await api.client.get("/v1/search/messages", params={"query": f"  {'x' * 256}  "}, headers=alice)
    assert answer.status_code == 200
    assert answer.json() == {"messages": [], "next_cursor": None}


async def test_a_message_search_while_the_index_is_down_is_503_search_unavailable(api: Api) -> None:
    _, alice = await api.user("alice")
    api.chats.search_down = True
    answer = await api.client.get("/v1/search/messages", params={"query": "hi"}, headers=alice)
    assert answer.status_code == 503
    assert answer.json()["error"]["reason"] == "SEARCH_UNAVAILABLE"


async def test_a_message_search_needs_a_token(api: Api) -> None:
    answer = await api.client.get("/v1/search/messages", params={"query": "hi"})
    assert answer.status_code == 401


async def test_the_openapi_document_lists_every_route_of_api_md_with_the_error_body(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    expected = {
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/auth/refresh"),
        ("GET", "/v1/me"),
        ("PATCH", "/v1/me"),
        ("GET", "/v1/users/{user_id}"),
        ("GET", "/v1/users"),
        ("POST", "/v1/conversations"),
        ("GET", "/v1/conversations"),
        ("GET", "/v1/conversations/{conversation_id}"),
        ("POST", "/v1/conversations/{conversation_id}/members"),
        ("DELETE", "/v1/conversations/{conversation_id}/members/{user_id}"),
        ("POST", "/v1/conversations/{conversation_id}/messages"),
        ("GET", "/v1/conversations/{conversation_id}/messages"),
        ("POST", "/v1/conversations/{conversation_id}/read"),
        ("DELETE", "/v1/conversations/{conversation_id}/messages/{message_id}"),
        ("GET", "/v1/sync"),
        ("GET", "/v1/search/messages"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    }
    assert expected <= routes
    assert ("GET", "/metrics") not in routes  # the metrics listener's, not the public port's
    send = document["paths"]["/v1/conversations/{conversation_id}/messages"]["post"]
    assert send["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


async def test_the_200_of_an_existing_direct_conversation_and_of_a_retried_send_are_declared(api: Api) -> None:
    """Both routes answer 201 the first time and 200 when the thing already existed: the document says both."""
    document = (await api.client.get("/openapi.json")).json()
    for path, model in (
        ("/v1/conversations", "ConversationOut"),
        ("/v1/conversations/{conversation_id}/messages", "SentOut"),
    ):
        responses = document["paths"][path]["post"]["responses"]
        for status in ("200", "201"):
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{model}"), (
                path,
                status,
            )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"client_msg_id": "c-1", "text": "\xff\xfe"}',
        b'{"client_msg_id": "c-1", "text": 42}',
        b'{"client_msg_id": "c-1"',
        b"not json at all",
    ],
)
async def test_invalid_utf8_wrong_types_and_broken_json_are_400(api: Api, raw: bytes) -> None:
    _, alice = await api.user("alice")
    conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=alice)).json()
    answer = await api.client.post(
        f"/v1/conversations/{conv['id']}/messages",
        content=raw,
        headers={**alice, "content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["reason"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"),
    [
        ("POST", "/v1/auth/register", b'{"username": "carol\\ud800", "password": "correct horse"}', "username"),
        ("POST", "/v1/auth/register", b'{"username": "carol", "password": "pass\\udfff word"}', "password"),
        ("POST", "/v1/auth/login", b'{"username": "\\ud800", "password": "correct horse"}', "username"),
        ("PATCH", "/v1/me", b'{"display_name": "A\\ud800"}', "display_name"),
        ("POST", "/v1/conversations", b'{"kind": "group", "title": "\\ud800"}', "title"),
        ("POST", "/conv/messages", b'{"client_msg_id": "c-\\ud800", "text": "hi"}', "client_msg_id"),
        ("POST", "/conv/messages", b'{"client_msg_id": "c-1", "text": "\\ud800"}', "text"),
    ],
)
async def test_a_lone_surrogate_in_any_string_field_is_400_naming_it(
    api: Api, method: str, path: str, raw: bytes, field: str
) -> None:
    _, alice = await api.user("alice")
    if path.startswith("/conv"):
        conv = (await api.client.post("/v1/conversations", json={"kind": "group", "title": "g"}, headers=alice)).json()
        path = f"/v1/conversations/{conv['id']}{path.removeprefix('/conv')}"
    headers = {**alice, "content-type": "application/json"}
    answer = await api.client.request(method, path, content=raw, headers=headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["reason"], error["metadata"]["field"]) == ("INVALID_ARGUMENT", field)


@pytest.mark.parametrize("query", ["%00", "a%00b", "a%0Ab", "a", "x" * 65])
async def test_a_user_search_with_control_characters_or_too_short_is_400_naming_query(api: Api, query: str) -> None:
    _, alice = await api.user("alice")
    answer = await api.client.get(f"/v1/users?query={query}", headers=alice)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["metadata"]["field"] == "query"


async def test_the_openapi_document_declares_the_rules_the_server_enforces(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    username = schemas["RegisterBody"]["properties"]["username"]
    assert (username["minLength"], username["maxLength"], username["pattern"]) == (
        3,
        32,
        "^[A-Za-z][A-Za-z0-9_]{2,31}$",
    )
    assert schemas["RegisterBody"]["properties"]["password"]["minLength"] == 8
    assert schemas["SendBody"]["properties"]["client_msg_id"]["minLength"] == 1
    assert schemas["SendBody"]["properties"]["text"]["maxLength"] == 4000
    create = schemas["CreateConversationBody"]
    assert create["if"] == {"properties": {"kind": {"const": "group"}}}
    assert "title" in create["then"]["required"]
    peer = create["properties"]["peer_id"]["anyOf"]
    assert [(p["type"], p.get("minimum")) for p in peer] == [("string", None), ("integer", 1), ("null", None)]
    assert {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"} in peer
    history = document["paths"]["/v1/conversations/{conversation_id}/messages"]["get"]["parameters"]
    after_seq = next(p for p in history if p["name"] == "after_seq")
    assert after_seq["schema"]["anyOf"][0]["minimum"] == 0
    path_id = next(p for p in history if p["name"] == "conversation_id")
    assert path_id["schema"]["exclusiveMinimum"] == 0


async def test_a_user_blocks_and_unblocks_another_with_204(api: Api) -> None:
    alice_id, alice = await api.user("alice")
    bob_id, _ = await api.user("bob")
    assert (await api.client.put(f"/v1/users/{bob_id}/block", headers=alice)).status_code == 204
    assert (int(alice_id), int(bob_id)) in api.accounts.blocks
    assert (await api.client.delete(f"/v1/users/{bob_id}/block", headers=alice)).status_code == 204
    assert api.accounts.blocks == set()
    itself = await api.client.put(f"/v1/users/{alice_id}/block", headers=alice)
    assert (itself.status_code, itself.json()["error"]["reason"]) == (400, "CANNOT_BLOCK_SELF")
