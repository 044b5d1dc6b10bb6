"""Authorization probes on the stack shape (separate processes over MariaDB, Redis and Kafka; free ports, a fresh
database), through the public ports only.

Every route of the bff's OpenAPI document that needs a token, the WebSocket handshake and the gRPC stream refuse a
missing, forged, tampered, expired, refresh-instead-of-access and ``alg=none`` token with 401 (UNAUTHENTICATED on
the stream) and the reason that says which. Every route and client frame that names a conversation refuses a
stranger (404 CONVERSATION_NOT_FOUND) and a member the owner removed (403 NOT_A_MEMBER), and nothing they asked for
happens. The routes come from the OpenAPI document: a route added later without a probe here fails the test. A
removed member's open socket and stream stop getting the conversation's events at once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import jwt
import pytest
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.client import PASSWORD, Client, Device, Person, StreamDevice
from tests.e2e.conftest import Instance, fresh_database
from tests.e2e.test_realtime import LIVE_S, System, start_system
from tidings.api.gateway.v1 import gateway_pb2 as pb
from tidings.pkg.errors.grpc import from_grpc_error

# Routes anyone may call, without a token.
PUBLIC = {
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}
STRANGER = (404, "CONVERSATION_NOT_FOUND")
REMOVED = (403, "NOT_A_MEMBER")


@dataclass
class Probing:
    """One bff of a stack-shaped system, a client of its HTTP API, and the devices a test connected (all closed
    at the end)."""

    system: System
    bff: Instance
    client: Client
    devices: list[Device | StreamDevice] = field(default_factory=list)

    async def connected(self, device: Device | StreamDevice) -> None:
        self.devices.append(device)
        await device.connect()


@pytest.fixture
async def probing(tmp_path: Path) -> AsyncIterator[Probing]:
    async with fresh_database() as database_url:
        system = await start_system(tmp_path, database_url, bffs=1)
        probing = Probing(system, system.bffs[0], Client(system.bffs[0].http_url))
        try:
            yield probing
        finally:
            for device in probing.devices:
                await device.close()
            await probing.client.close()
            await system.fleet.close()


@dataclass
class Signed:
    """A person with both of their tokens."""

    person: Person
    access: str
    refresh: str

    @property
    def id(self) -> str:
        return self.person.id


@dataclass
class Scene:
    """Alice owns a group with Bob; Dave was in it until Alice removed him; Carol never was, and has a group of her
    own. ``message`` is Alice's in the group."""

    alice: Signed
    bob: Signed
    carol: Signed
    dave: Signed
    group: str
    message: dict[str, Any]
    carols_group: str


async def sign_up(client: Client, prefix: str) -> Signed:
    username = f"{prefix}_{uuid.uuid4().hex[:8]}"
    answer = await client.http.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    person = Person(body["user"]["id"], username, {"Authorization": f"Bearer {body['access_token']}"})
    return Signed(person, body["access_token"], body["refresh_token"])


async def set_scene(client: Client) -> Scene:
    alice, bob, carol, dave = [await sign_up(client, name) for name in ("alice", "bob", "carol", "dave")]
    group = (await client.group(alice.person, "probed", [bob.person, dave.person]))["id"]
    sent = await client.send(alice.person, group, "hello members")
    assert sent.status_code == 201, sent.text
    await client.wait_for_max_seq(alice.person, group, sent.json()["message"]["seq"])
    removed = await client.http.delete(f"/v1/conversations/{group}/members/{dave.id}", headers=alice.person.headers)
    assert removed.status_code == 200, removed.text
    assert dave.person.id not in removed.json()["member_ids"]
    carols_group = (await client.group(carol.person, "carol's own", [bob.person]))["id"]
    return Scene(alice, bob, carol, dave, group, sent.json()["message"], carols_group)


# Tokens that must not count ---------------------------------------------------------------------------------------


def bad_tokens(scene: Scene, config: Path) -> dict[str, tuple[str, str]]:
    """Alice's access token gone wrong in every way a client (or an attacker) could send it: what -> (token, the
    reason of the 401)."""
    secret = yaml.safe_load(config.read_text())["auth"]["jwt_secret"]
    claims = jwt.decode(scene.alice.access, options={"verify_signature": False})
    issued = int(time.time()) - 3600
    header, _, _ = scene.alice.access.split(".")
    # Bob's user id under Alice's signature: a payload changed after signing.
    tampered_claims = jwt.encode({**claims, "sub": scene.bob.id}, secret, algorithm="HS256").split(".")[1]
    return {
        "missing": ("", "UNAUTHENTICATED"),
        "forged": (jwt.encode(claims, "x" * len(secret), algorithm="HS256"), "TOKEN_INVALID"),
        "tampered": (f"{header}.{tampered_claims}.{scene.alice.access.split('.')[2]}", "TOKEN_INVALID"),
        "expired": (
            jwt.encode({**claims, "iat_ms": issued * 1000, "exp": issued + 60}, secret, algorithm="HS256"),
            "TOKEN_EXPIRED",
        ),
        "refresh": (scene.alice.refresh, "TOKEN_INVALID"),
        "alg none": (jwt.encode(claims, "", algorithm="none"), "TOKEN_INVALID"),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# Every route that needs a token, and how to call it -------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Route:
    """How to call a route for ``who``; ``member_only``: it names a conversation, so a stranger and a removed
    member are refused (routes naming a user alone serve public profiles: any signed-in user may call them)."""

    call: Callable[[Scene, Signed], Call]
    member_only: bool


def _group(scene: Scene, tail: str = "") -> str:
    return f"/v1/conversations/{scene.group}{tail}"


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/v1/me"): Route(lambda s, w: Call("GET", "/v1/me"), member_only=False),
    ("PATCH", "/v1/me"): Route(lambda s, w: Call("PATCH", "/v1/me", {"bio": "probed"}), member_only=False),
    ("GET", "/v1/users/{user_id}"): Route(lambda s, w: Call("GET", f"/v1/users/{s.bob.id}"), member_only=False),
    ("GET", "/v1/users"): Route(lambda s, w: Call("GET", "/v1/users", params={"query": "bo"}), member_only=False),
    ("PUT", "/v1/users/{user_id}/block"): Route(
        lambda s, w: Call("PUT", f"/v1/users/{s.bob.id}/block"), member_only=False
    ),
    ("DELETE", "/v1/users/{user_id}/block"): Route(
        lambda s, w: Call("DELETE", f"/v1/users/{s.bob.id}/block"), member_only=False
    ),
    ("POST", "/v1/conversations"): Route(
        lambda s, w: Call("POST", "/v1/conversations", {"kind": "group", "title": "t", "member_ids": [s.bob.id]}),
        member_only=False,
    ),
    ("GET", "/v1/conversations"): Route(lambda s, w: Call("GET", "/v1/conversations"), member_only=False),
    ("GET", "/v1/sync"): Route(lambda s, w: Call("GET", "/v1/sync"), member_only=False),
    ("GET", "/v1/conversations/{conversation_id}"): Route(lambda s, w: Call("GET", _group(s)), member_only=True),
    ("POST", "/v1/conversations/{conversation_id}/members"): Route(
        lambda s, w: Call("POST", _group(s, "/members"), {"user_ids": [w.id]}), member_only=True
    ),
    ("DELETE", "/v1/conversations/{conversation_id}/members/{user_id}"): Route(
        lambda s, w: Call("DELETE", _group(s, f"/members/{s.bob.id}")), member_only=True
    ),
    ("POST", "/v1/conversations/{conversation_id}/messages"): Route(
        lambda s, w: Call("POST", _group(s, "/messages"), {"client_msg_id": uuid.uuid4().hex, "text": "let me in"}),
        member_only=True,
    ),
    ("GET", "/v1/conversations/{conversation_id}/messages"): Route(
        lambda s, w: Call("GET", _group(s, "/messages"), params={"after_seq": 0}), member_only=True
    ),
    ("POST", "/v1/conversations/{conversation_id}/read"): Route(
        lambda s, w: Call("POST", _group(s, "/read"), {"seq": 1}), member_only=True
    ),
    ("DELETE", "/v1/conversations/{conversation_id}/messages/{message_id}"): Route(
        lambda s, w: Call("DELETE", _group(s, f"/messages/{s.message['id']}")), member_only=True
    ),
    ("GET", "/v1/search/messages"): Route(
        lambda s, w: Call("GET", "/v1/search/messages", params={"query": "hello", "conversation_id": s.group}),
        member_only=True,
    ),
}


def ids_named(operation: dict[str, Any]) -> set[str]:
    """The ids (user, conversation, message) an operation names, in its path or its query."""
    return {parameter["name"] for parameter in operation.get("parameters", []) if parameter["name"].endswith("_id")}


async def request(client: Client, call: Call, token: str) -> Any:
    return await client.http.request(call.method, call.url, json=call.json, params=call.params, headers=bearer(token))


# 1. Tokens and membership on every route, at the handshake, and on every frame -----------------------------------


@pytest.mark.timeout(240)
async def test_every_route_frame_and_handshake_refuses_bad_tokens_strangers_and_removed_members(
    probing: Probing,
) -> None:
    bff, client = probing.bff, probing.client
    document = (await client.http.get("/openapi.json")).json()
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    # A route added without a probe (or a probe left for a route that went) fails here.
    assert set(operations) - PUBLIC == set(ROUTES), "give every route that needs a token a probe in ROUTES"
    with_ids = {key: ids_named(operation) for key, operation in operations.items() if ids_named(operation)}
    assert set(with_ids) <= set(ROUTES)
    assert all(ROUTES[key].member_only for key, ids in with_ids.items() if "conversation_id" in ids)

    scene = await set_scene(client)
    tokens = bad_tokens(scene, probing.system.fleet.config)

    # (c)-(f) on REST: every route, every bad token: 401 with the reason.
    for key, route in ROUTES.items():
        for what, (token, reason) in tokens.items():
            answer = await request(client, route.call(scene, scene.alice), token)
            error = answer.json().get("error", {})
            assert (answer.status_code, error.get("reason")) == (401, reason), (key, what, answer.text)

    # And the other way round: what is no refresh token of ours is refused where one is expected.
    token_id = scene.alice.refresh.partition(".")[0]
    for forged in (scene.alice.access, f"{token_id}.wrong", "9999999999999999999.x", "\u00b2\u00b3.x"):
        answer = await client.http.post("/v1/auth/refresh", json={"refresh_token": forged})
        assert (answer.status_code, answer.json()["error"]["reason"]) == (401, "TOKEN_INVALID"), (forged, answer.text)

    # (a) and (b) on REST: a stranger and a removed member, on every route that names the conversation.
    for key, route in ROUTES.items():
        if not route.member_only:
            continue
        for who, expected in ((scene.carol, STRANGER), (scene.dave, REMOVED)):
            answer = await request(client, route.call(scene, who), who.access)
            error = answer.json().get("error", {})
            assert (answer.status_code, error.get("reason")) == expected, (key, who.person.username, answer.text)
    # A message id of another conversation, under the caller's own conversation's path, names nothing there.
    cross = await client.http.delete(
        f"/v1/conversations/{scene.carols_group}/messages/{scene.message['id']}", headers=scene.carol.person.headers
    )
    assert cross.status_code == 404, cross.text

    # Nothing the refused calls asked for happened.
    group = await client.conversation(scene.alice.person, scene.group)
    assert set(group["member_ids"]) == {scene.alice.id, scene.bob.id}
    history = (await client.history(scene.alice.person, scene.group, after_seq=0))["messages"]
    assert [(m["id"], m["recalled"]) for m in history] == [(scene.message["id"], False)]
    assert (await client.http.get("/v1/me", headers=scene.alice.person.headers)).json()["bio"] == ""
    assert (await client.direct(scene.bob.person, scene.alice.person))["kind"] == "direct"  # nobody blocked Bob

    # (c)-(f) at the WebSocket handshake (HTTP 401 with the reason) and on the gRPC stream (UNAUTHENTICATED).
    for what, (token, reason) in tokens.items():
        with pytest.raises(InvalidStatus) as denied:
            async with connect(f"{bff.ws_url}?token={quote(token, safe='')}"):
                pass
        body = json.loads(denied.value.response.body or b"{}")
        assert (denied.value.response.status_code, body["error"]["reason"]) == (401, reason), what
        stream = StreamDevice(bff.grpc_address, Person(scene.alice.id, "", {"Authorization": f"Bearer {token}"}))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.connect()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, what
        assert from_grpc_error(refused.value).reason == reason, what

    # (a) and (b) on every frame that names a conversation, on the socket and on the stream.
    for who, expected in ((scene.carol, STRANGER), (scene.dave, REMOVED)):
        socket, stream = Device(bff.ws_url, who.person), StreamDevice(bff.grpc_address, who.person)
        await probing.connected(socket)
        await probing.connected(stream)
        for frame in (
            {"type": "send", "conversation_id": scene.group, "client_msg_id": uuid.uuid4().hex, "text": "hi"},
            {"type": "typing", "conversation_id": scene.group},
            {"type": "read", "conversation_id": scene.group, "seq": 1},
        ):
            answer = await socket.ask(frame)
            assert answer["type"] == "error", (who.person.username, frame, answer)
            assert (answer["error"]["code"], answer["error"]["reason"]) == expected, (frame, answer)
        group_id = int(scene.group)
        for request_pb in (
            pb.ConnectRequest(send=pb.SendFrame(conversation_id=group_id, client_msg_id="c-1", text="hi")),
            pb.ConnectRequest(typing=pb.TypingFrame(conversation_id=group_id)),
            pb.ConnectRequest(read=pb.ReadFrame(conversation_id=group_id, seq=1)),
        ):
            reply = await stream.ask(request_pb)
            assert reply.WhichOneof("frame") == "error", (who.person.username, request_pb, reply)
            assert (reply.error.code, reply.error.reason) == expected, (request_pb, reply)
    history = (await client.history(scene.alice.person, scene.group, after_seq=0))["messages"]
    assert [m["id"] for m in history] == [scene.message["id"]]


# 2. A removed member's open connections hear nothing more of the conversation -------------------------------------


async def fenced(device: Device | StreamDevice) -> None:
    """Wait until everything queued for ``device`` before now has arrived: its answer to a ping comes after it."""
    if isinstance(device, Device):
        assert (await device.ask({"type": "ping"}))["type"] == "pong"
    else:
        assert (await device.ask(pb.ConnectRequest(ping=pb.PingFrame()))).WhichOneof("frame") == "pong"


def about(device: Device | StreamDevice, conversation_id: str) -> list[dict[str, Any]]:
    """The events ``device`` got of one conversation, in order."""
    return [
        frame
        for frame in device.frames
        if frame.get("conversation_id", frame.get("message", {}).get("conversation_id")) == conversation_id
    ]


@pytest.mark.timeout(180)
async def test_a_removed_member_s_open_socket_and_stream_stop_getting_the_conversation_at_once(
    probing: Probing,
) -> None:
    bff, client = probing.bff, probing.client
    alice, bob, carol = [await client.register(name) for name in ("alice", "bob", "carol")]
    group = (await client.group(alice, "soon without carol", [bob, carol]))["id"]
    alices, bobs = Device(bff.ws_url, alice), Device(bff.ws_url, bob)
    carols_socket, carols_stream = Device(bff.ws_url, carol), StreamDevice(bff.grpc_address, carol)
    for device in (alices, bobs, carols_socket, carols_stream):
        await probing.connected(device)

    # Before: everyone hears the group (and the push job has its members at hand).
    before = await client.send(alice, group, "before")
    assert before.status_code == 201, before.text
    for device in probing.devices:
        assert await device.wait_for({before.json()["message"]["id"]}, LIVE_S) == set()

    removed = await client.http.delete(f"/v1/conversations/{group}/members/{carol.id}", headers=alice.headers)
    assert removed.status_code == 200, removed.text
    heard_before = {device: len(about(device, group)) for device in (carols_socket, carols_stream)}

    # After: a message, a recall and typing, on every path events take (REST and socket sends, the push job,
    # typing's direct fan-out).
    after = await client.send(alice, group, "after")
    assert after.status_code == 201, after.text
    by_socket = await alices.ask(
        {"type": "send", "conversation_id": group, "client_msg_id": uuid.uuid4().hex, "text": "after, live"}
    )
    assert by_socket["type"] == "sent", by_socket
    recalled = await client.http.delete(
        f"/v1/conversations/{group}/messages/{before.json()['message']['id']}", headers=alice.headers
    )
    assert recalled.status_code == 204, recalled.text
    await alices.send({"type": "typing", "conversation_id": group})

    # Bob, still a member, hears all of it ...
    after_ids = {after.json()["message"]["id"], by_socket["message"]["id"]}
    assert await bobs.wait_for(after_ids, LIVE_S) == set()
    await bobs.frame("message.recalled", LIVE_S, conversation_id=group)
    await bobs.frame("typing", LIVE_S, conversation_id=group)
    # ... and was handed each in the same delivery as every other recipient on this bff: once Carol's devices
    # answered a ping sent after that, whatever was queued for them has arrived.
    for device in (carols_socket, carols_stream):
        await fenced(device)
        assert about(device, group)[heard_before[device] :] == [], type(device).__name__
        assert device.open


# Keep the helpers honest: a stranger's request is the same request as a member's, only with another token.
def test_every_probe_calls_the_route_it_is_filed_under() -> None:
    ids = Signed(Person("11", "u", {}), "", "")
    scene = Scene(ids, ids, ids, ids, "22", {"id": "33"}, "44")
    for (method, path), route in ROUTES.items():
        call = route.call(scene, ids)
        pattern = path.replace("{conversation_id}", "22").replace("{user_id}", "11").replace("{message_id}", "33")
        assert (call.method, call.url) == (method, pattern)
