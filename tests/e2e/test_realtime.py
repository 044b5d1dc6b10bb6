"""Real-time delivery through the public ports only, on separate processes over MariaDB, Redis and Kafka (free
ports, a fresh database): one user's WebSocket and gRPC stream both get every message of a long exchange in a
direct chat and a 100-member group exactly once and in seq order, with typing and presence; a bff instance killed
with clients attached costs them nothing once they reconnect elsewhere and catch up; bad frames and bad tokens
get clear errors."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.client import Client, Device, Person, StreamDevice
from tests.e2e.conftest import Instance, fresh_database, wide_fleet
from tests.e2e.fleet import ROOT, Fleet, port_env
from tidings.api.gateway.v1 import gateway_pb2 as pb
from tidings.bench.system import free_port

LIVE_S = 60  # bound on a live event while nothing is failing (a fresh consumer group may still be joining)
EXCHANGE_S = 240  # bound on the whole exchange reaching both devices
EXCHANGE = 1000  # messages in each conversation: 2,000 in all
GROUP_SIZE = 100
IN_FLIGHT = 24  # sends in flight at once
# The fault test: routes live this long unless refreshed, so a dead instance's routes expire within the test.
ROUTE_TTL_S = 6
SETTLE_S = 60  # bound on what follows a crash: reconnecting, a dead instance's routes expiring
# These users send far faster than people do (thousands of messages in seconds): lift the per-user send limit,
# which tests/e2e/test_limits.py covers.
UNLIMITED_SENDS = {"TIDINGS_LIMITS__SEND_PER_S": "1000000", "TIDINGS_LIMITS__SEND_BURST": "1000000"}


@dataclass
class System:
    fleet: Fleet
    bffs: list[Instance]
    # account's gRPC address (operator calls, as the admin module makes them).
    account_grpc: str = ""


async def start_system(tmp_path: Path, database_url: str, *, bffs: int, env: dict[str, str] | None = None) -> System:
    """account, chat, one job and ``bffs`` bff instances, each its own process on free ports."""
    ports: dict[str, tuple[int, int | None]] = {name: (free_port(), free_port()) for name in ("account", "chat")}
    ports["job"] = (free_port(), None)
    fleet_env = {"TIDINGS_DATABASE__URL": database_url, **moved(ports), **UNLIMITED_SENDS, **(env or {})}
    fleet = Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env=fleet_env)
    instances: list[Instance] = []
    try:
        # One after another: the first applies the migrations, the others find them applied.
        for name in ("account", "chat", "job"):
            await fleet.start(name, ready_port=ports[name][0])
        for n in range(bffs):
            http, grpc, internal = free_port(), free_port(), free_port()
            own = {
                **port_env("bff", http, grpc, internal=internal),
                "TIDINGS_REALTIME__ADVERTISE": f"127.0.0.1:{internal}",
            }
            await fleet.start(f"bff{n + 1}", ready_port=http, args=["serve", "bff"], env=own)
            instances.append(Instance(f"http://127.0.0.1:{http}", f"ws://127.0.0.1:{http}/v1/ws", f"127.0.0.1:{grpc}"))
    except BaseException:
        await fleet.close()
        raise
    return System(fleet, instances, f"127.0.0.1:{ports['account'][1]}")


def moved(ports: Mapping[str, tuple[int, int | None]]) -> dict[str, str]:
    return {key: value for name, pair in ports.items() for key, value in port_env(name, *pair).items()}


async def start_dev(tmp_path: Path, env: dict[str, str] | None = None) -> System:
    """``tidings dev`` (every module in one process, embedded adapters, its own files) on free ports."""
    ports: dict[str, tuple[int, int | None]] = {name: (free_port(), free_port()) for name in ("bff", "account", "chat")}
    ports |= {name: (free_port(), None) for name in ("job", "task", "admin")}
    fleet = Fleet(ROOT / "configs" / "dev.yaml", tmp_path, env={**moved(ports), **UNLIMITED_SENDS, **(env or {})})
    try:
        await fleet.start("dev", ready_port=ports["bff"][0])
        for name in ("account", "chat", "job"):
            fleet.processes["dev"].ready_port = ports[name][0]
            await fleet.wait_ready("dev")
    except BaseException:
        await fleet.close()
        raise
    http, grpc = ports["bff"]
    bff = Instance(f"http://127.0.0.1:{http}", f"ws://127.0.0.1:{http}/v1/ws", f"127.0.0.1:{grpc}")
    return System(fleet, [bff], f"127.0.0.1:{ports['account'][1]}")


@pytest.fixture(params=["stack", "dev", "wide"])
async def one_bff(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[System]:
    """One bff: on separate processes over MariaDB, Redis and Kafka, or ``tidings dev`` as ``make run``; or, wide,
    two instances of every module (the tests put their second person's devices on ``bffs[-1]``, the other one)."""
    if request.param == "dev":
        system = await start_dev(tmp_path)
        try:
            yield system
        finally:
            await system.fleet.close()
        return
    async with fresh_database() as database_url:
        if request.param == "wide":
            fleet, instances = await wide_fleet(tmp_path, database_url, UNLIMITED_SENDS)
            system = System(fleet, instances, "127.0.0.1:9081")
        else:
            system = await start_system(tmp_path, database_url, bffs=1)
        try:
            yield system
        finally:
            await system.fleet.close()


@pytest.fixture
async def two_bffs(tmp_path: Path) -> AsyncIterator[System]:
    async with fresh_database() as database_url:
        env = {"TIDINGS_REALTIME__ROUTE_TTL_S": str(ROUTE_TTL_S)}
        system = await start_system(tmp_path, database_url, bffs=2, env=env)
        try:
            yield system
        finally:
            await system.fleet.close()


# Sending, as apps do: a fresh client_msg_id per message, the same one again on a retry --------------------------


async def send_rest(client: Client, me: Person, conversation_id: str, text: str) -> dict[str, Any]:
    """``POST .../messages``, retried with the same client_msg_id while the answer is a 5XX (a deadline passed
    under load, say), as an app does."""
    client_msg_id = uuid.uuid4().hex
    for _ in range(5):
        answer = await client.send(me, conversation_id, text, client_msg_id)
        if answer.status_code < 500:
            break
        await asyncio.sleep(0.2)
    # 200: a retry found the first attempt stored after all, and answers with it.
    assert answer.status_code in (200, 201), answer.text
    message: dict[str, Any] = answer.json()["message"]
    return message


async def send_ws(device: Device, conversation_id: str, text: str) -> dict[str, Any]:
    frame = {"type": "send", "conversation_id": conversation_id, "client_msg_id": uuid.uuid4().hex, "text": text}
    answer = await device.ask(frame)
    assert answer["type"] == "sent", answer
    message: dict[str, Any] = answer["message"]
    return message


async def send_stream(device: StreamDevice, conversation_id: str, text: str) -> dict[str, Any]:
    frame = pb.SendFrame(conversation_id=int(conversation_id), client_msg_id=uuid.uuid4().hex, text=text)
    answer = await device.ask(pb.ConnectRequest(send=frame))
    assert answer.WhichOneof("frame") == "sent", answer
    message = answer.sent.message
    return {"id": str(message.id), "conversation_id": str(message.conversation_id), "seq": message.seq}


async def bounded(sends: list[Callable[[], Awaitable[dict[str, Any]]]], limit: int) -> list[dict[str, Any]]:
    """Run ``sends`` with at most ``limit`` in flight; their answers in the order given."""
    slots = asyncio.Semaphore(limit)

    async def one(send: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        async with slots:
            return await send()

    return list(await asyncio.gather(*(one(send) for send in sends)))


async def register_many(client: Client, prefix: str, count: int) -> list[Person]:
    # Password hashing is CPU-bound by design: more at once than there are cores only queues them.
    slots = asyncio.Semaphore(4)

    async def one() -> Person:
        async with slots:
            return await client.register(prefix)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def by_seq(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m["id"]) for m in sorted(messages, key=lambda m: m["seq"])]


# 1. One user, a WebSocket and a gRPC stream, a long exchange ------------------------------------------------------


@pytest.mark.timeout(300)
async def test_a_socket_and_a_stream_of_one_user_get_every_message_once_in_seq_order_with_typing_and_presence(
    one_bff: System,
) -> None:
    bff, other = one_bff.bffs[0], one_bff.bffs[-1]
    client = Client(bff.http_url)
    devices: list[Device | StreamDevice] = []
    try:
        alice, bob = await client.register("alice"), await client.register("bob")
        others = await register_many(client, "member", GROUP_SIZE - 2)
        carol = others[0]
        direct = (await client.direct(alice, bob))["id"]
        group = await client.group(alice, "hundred", [bob, *others])
        assert len(group["member_ids"]) == GROUP_SIZE
        group_id = group["id"]

        # Alice has a browser tab and a native app open at once.
        socket, stream = Device(bff.ws_url, alice), StreamDevice(other.grpc_address, alice)
        devices += [socket, stream]
        await socket.connect()
        await stream.connect()
        alice_devices: list[Device | StreamDevice] = [socket, stream]

        # Presence: Bob comes online; both of Alice's devices hear it.
        bob_socket, carol_socket = Device(other.ws_url, bob), Device(bff.ws_url, carol)
        devices += [bob_socket, carol_socket]
        await bob_socket.connect()
        await carol_socket.connect()
        for device in alice_devices:
            await device.frame("presence", LIVE_S, user_id=bob.id, status="online")
            await device.frame("presence", LIVE_S, user_id=carol.id, status="online")

        # Typing: Bob in the direct chat, Carol in the group; not stored, relayed to the members online.
        await bob_socket.send({"type": "typing", "conversation_id": direct})
        await carol_socket.send({"type": "typing", "conversation_id": group_id})
        for device in alice_devices:
            await device.frame("typing", LIVE_S, conversation_id=direct, user_id=bob.id)
            await device.frame("typing", LIVE_S, conversation_id=group_id, user_id=carol.id)

        # The exchange: both sides write, over REST, the socket's and the stream's send frames, all at once.
        group_senders = [bob, *others[:6]]
        sends: list[Callable[[], Awaitable[dict[str, Any]]]] = []
        for n in range(EXCHANGE):
            for conversation, peers in ((direct, [bob]), (group_id, group_senders)):
                text = f"{n} in {conversation}"
                match n % 10:
                    case 0:
                        sends.append(partial(send_ws, socket, conversation, text))
                    case 1:
                        sends.append(partial(send_stream, stream, conversation, text))
                    case 2:
                        sends.append(partial(send_rest, client, alice, conversation, text))
                    case _:
                        peer = peers[n % len(peers)]
                        sends.append(partial(send_rest, client, peer, conversation, text))
        sent = await bounded(sends, IN_FLIGHT)

        for conversation in (direct, group_id):
            mine = [m for m in sent if m["conversation_id"] == conversation]
            assert len(mine) == EXCHANGE
            expected = by_seq(mine)
            for device in alice_devices:
                assert await device.wait_for(set(expected), EXCHANGE_S) == set()
                # Every message exactly once, in seq order: what arrived is the acknowledged list, sorted by seq.
                assert [str(m["id"]) for m in device.arrivals(conversation)] == expected
            # And it is what history holds.
            await client.wait_for_max_seq(alice, conversation, max(m["seq"] for m in mine), timeout_s=LIVE_S)
            assert [m["id"] for m in await client.everything(alice, conversation)] == expected

        # Presence: Bob goes away; both of Alice's devices hear it.
        await bob_socket.close()
        for device in alice_devices:
            await device.frame("presence", LIVE_S, user_id=bob.id, status="offline")
    finally:
        for device in devices:
            await device.close()
        await client.close()


# 2. A bff instance dies with clients attached ----------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_a_killed_bff_s_clients_reconnect_to_the_other_and_catch_up_with_no_gap_and_no_duplicate(
    two_bffs: System,
) -> None:
    one, two = two_bffs.bffs
    via_one, via_two = Client(one.http_url), Client(two.http_url)
    devices: list[Device | StreamDevice] = []
    try:
        alice, bob, carol = (
            await via_one.register("alice"),
            await via_two.register("bob"),
            await via_one.register("carol"),
        )
        direct = (await via_one.direct(alice, bob))["id"]
        group = (await via_two.group(alice, "trio", [bob, carol]))["id"]
        # Alice and Bob have a device on the first instance that falls back on the second, and one on the second;
        # Carol has one device, on the first, and does not come back.
        alice_ws = Device(one.ws_url, alice, two.ws_url)
        alice_stream = StreamDevice(one.grpc_address, alice, two.grpc_address)
        bob_ws = Device(one.ws_url, bob, two.ws_url)
        alice_two, bob_two = Device(two.ws_url, alice), Device(two.ws_url, bob)
        carol_ws = Device(one.ws_url, carol)
        devices += [alice_ws, alice_stream, bob_ws, alice_two, bob_two, carol_ws]
        for device in devices:
            await device.connect()
        owner: dict[Device | StreamDevice, Person] = {
            alice_ws: alice,
            alice_stream: alice,
            bob_ws: bob,
            alice_two: alice,
            bob_two: bob,
        }

        def sends(count: int, client: Client, label: str) -> list[Callable[[], Awaitable[dict[str, Any]]]]:
            senders = [(alice, direct), (bob, direct), (alice, group), (bob, group), (carol, group)]
            return [partial(send_rest, client, *senders[n % 5], f"{label} {n}") for n in range(count)]

        # Messages flow through both instances and reach every device live.
        before = await bounded(sends(60, via_one, "before") + sends(60, via_two, "before"), 8)
        for device in (alice_ws, alice_stream, bob_ws, alice_two, bob_two):
            assert await device.wait_for({m["id"] for m in before}, LIVE_S) == set()

        # More flow through the second instance; the first is killed in the middle of it.
        flowing = asyncio.create_task(bounded(sends(300, via_two, "during"), 4))
        await asyncio.sleep(1)
        await two_bffs.fleet.kill("bff1")
        broken: list[Device | StreamDevice] = [alice_ws, alice_stream, bob_ws]
        for device in broken:
            await device.wait_closed(SETTLE_S)
            await device.reconnect(SETTLE_S)
            assert device.target == device.targets[1]
        during = await flowing

        # Routed again, the reconnected devices get new messages live although the dead instance's routes of
        # the very same users may still be in the table: pushes there fail fast and do not hold the others up.
        after = await bounded(sends(20, via_two, "after"), 4)
        for device in broken:
            assert await device.wait_for({m["id"] for m in after}, LIVE_S) == set()
        # The devices that stayed connected missed nothing, live.
        everything = before + during + after
        for device in (alice_two, bob_two):
            assert await device.wait_for({m["id"] for m in everything}, LIVE_S) == set()
        # Carol's only route was on the dead instance: it expires, and her peers hear that she went offline.
        for device in (alice_two, bob_two):
            await device.frame("presence", SETTLE_S, user_id=carol.id, status="offline")

        # Catching up (README): GET /v1/sync, then history after the last seq each has; merged by message id.
        histories = {}
        for conversation in (direct, group):
            last = max(m["seq"] for m in everything if m["conversation_id"] == conversation)
            await via_two.wait_for_max_seq(alice, conversation, last, timeout_s=SETTLE_S)
            histories[conversation] = [m["id"] for m in await via_two.everything(alice, conversation)]
            acked = {m["id"] for m in everything if m["conversation_id"] == conversation}
            assert acked <= set(histories[conversation])
        for device, person in owner.items():
            await via_two.catch_up(person, device)
            for conversation, history in histories.items():
                shown = [m for m in device.messages.values() if m["conversation_id"] == conversation]
                # The final view: every message once, in seq order, nothing missing, nothing extra.
                assert by_seq(shown) == history
    finally:
        for device in devices:
            await device.close()
        await via_one.close()
        await via_two.close()


# 3. Bad frames and bad tokens -----------------------------------------------------------------------------------


async def ws_error(device: Device, raw: str | bytes) -> dict[str, Any]:
    """The error frame answering ``raw``; a ping after it is answered, so the connection stayed open."""
    seen = len(device.frames)
    await device.send_raw(raw)
    assert (await device.ask({"type": "ping"}))["type"] == "pong"
    errors = [frame for frame in device.frames[seen:] if frame["type"] == "error"]
    assert len(errors) == 1, device.frames[seen:]
    error: dict[str, Any] = errors[0]["error"]
    assert len(error["trace_id"]) == 32
    assert error["reason"]
    assert error["message"]
    return error


async def stream_error(device: StreamDevice, request: pb.ConnectRequest) -> pb.ErrorFrame:
    """The error frame answering ``request``; a ping after it is answered, so the stream stayed open."""
    answer = await device.ask(request)
    assert answer.WhichOneof("frame") == "error", answer
    assert (await device.ask(pb.ConnectRequest(ping=pb.PingFrame()))).WhichOneof("frame") == "pong"
    assert len(answer.error.trace_id) == 32
    assert answer.error.reason
    assert answer.error.message
    return answer.error


def expired_token(person: Person, config: Path) -> str:
    """``person``'s access token as it is once its time is up: the same claims, signed the same way (the secret of
    the ``config`` the fleet runs with), past expiry."""
    secret = yaml.safe_load(config.read_text())["auth"]["jwt_secret"]
    claims = jwt.decode(person.headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})
    issued = int(time.time()) - 3600
    return jwt.encode({**claims, "iat_ms": issued * 1000, "exp": issued + 60}, secret, algorithm="HS256")


@pytest.mark.timeout(180)
async def test_bad_frames_get_an_error_with_a_reason_and_bad_tokens_are_refused_at_the_handshake(
    one_bff: System,
) -> None:
    bff = one_bff.bffs[0]
    client = Client(bff.http_url)
    devices: list[Device | StreamDevice] = []
    try:
        alice, bob, carol, dave = [await client.register(name) for name in ("alice", "bob", "carol", "dave")]
        direct = (await client.direct(alice, bob))["id"]
        foreign = (await client.direct(carol, dave))["id"]
        # What REST answers Alice for someone else's conversation: the socket and the stream answer the same.
        refused = await client.send(alice, foreign, "not mine")
        assert refused.status_code in (403, 404), refused.text
        not_hers = refused.json()["error"]["reason"]

        socket, stream = Device(bff.ws_url, alice), StreamDevice(bff.grpc_address, alice)
        devices += [socket, stream]
        await socket.connect()
        await stream.connect()

        # WebSocket: what cannot be read is a 400 naming the field; a frame that can be read echoes its ref.
        unreadable: list[tuple[str | bytes, str]] = [
            ("not json", "frame"),
            (b"\xff\xfe\x00 not utf-8", "frame"),
            ("[1, 2]", "frame"),
            (json.dumps({"type": "shout"}), "type"),
            (json.dumps({"type": "send", "conversation_id": direct, "text": "no client_msg_id"}), "client_msg_id"),
            (json.dumps({"type": "typing", "conversation_id": "-4"}), "conversation_id"),
        ]
        for raw, field in unreadable:
            error = await ws_error(socket, raw)
            assert (error["code"], error["metadata"]["field"]) == (400, field), (raw[:40], error)
        unknown = await socket.ask({"type": "shout"})
        assert (unknown["type"], unknown["error"]["metadata"]["field"]) == ("error", "type")
        # A WebSocket frame over the size limit is refused by the server unread (close 1009): test_transport_security.
        for frame in (
            {"type": "send", "conversation_id": foreign, "client_msg_id": "c-1", "text": "not mine"},
            {"type": "typing", "conversation_id": foreign},
            {"type": "read", "conversation_id": foreign, "seq": 1},
        ):
            answer = await socket.ask(frame)
            assert (answer["type"], answer["error"]["reason"]) == ("error", not_hers), answer

        # gRPC stream: a frame with nothing in it, an oversized one, someone else's conversation.
        empty = await stream_error(stream, pb.ConnectRequest())
        assert (empty.code, empty.metadata["field"]) == (400, "frame")
        big = pb.SendFrame(conversation_id=int(direct), client_msg_id="c", text="x" * 70_000)
        too_big = await stream_error(stream, pb.ConnectRequest(send=big))
        assert (too_big.code, too_big.metadata["field"]) == (400, "frame")
        for request in (
            pb.ConnectRequest(send=pb.SendFrame(conversation_id=int(foreign), client_msg_id="c-1", text="not mine")),
            pb.ConnectRequest(typing=pb.TypingFrame(conversation_id=int(foreign))),
            pb.ConnectRequest(read=pb.ReadFrame(conversation_id=int(foreign), seq=1)),
        ):
            assert (await stream_error(stream, request)).reason == not_hers

        # Bytes that are no ConnectRequest at all, from a client that writes raw frames.
        async with grpc.aio.insecure_channel(bff.grpc_address) as channel:
            connect_raw = channel.stream_stream(
                "/tidings.gateway.v1.Gateway/Connect", response_deserializer=pb.ConnectResponse.FromString
            )
            call = connect_raw(metadata=stream.metadata)
            await call.write(b"\xff\xff\xff\xff not protobuf")
            await call.write(pb.ConnectRequest(ref=77, ping=pb.PingFrame()).SerializeToString())
            async with asyncio.timeout(LIVE_S):
                garbage, pong = await call.read(), await call.read()
            assert isinstance(garbage, pb.ConnectResponse)
            assert isinstance(pong, pb.ConnectResponse)
            assert (garbage.error.code, garbage.error.metadata["field"]) == (400, "frame")
            assert (pong.ref, pong.WhichOneof("frame")) == (77, "pong")
            call.cancel()

        # Both still work: a message sent over each is stored, and both devices get both.
        sent = [await send_ws(socket, direct, "still here"), await send_stream(stream, direct, "me too")]
        for device in (socket, stream):
            assert await device.wait_for({m["id"] for m in sent}, LIVE_S) == set()

        # Handshake: a missing, forged or expired token is refused before anything is served.
        for token, reason in [
            ("", "UNAUTHENTICATED"),
            ("forged", "TOKEN_INVALID"),
            (expired_token(alice, one_bff.fleet.config), "TOKEN_EXPIRED"),
        ]:
            with pytest.raises(InvalidStatus) as denied:
                async with connect(f"{bff.ws_url}?token={token}"):
                    pass
            assert denied.value.response.status_code == 401
            body = json.loads(denied.value.response.body or b"{}")
            assert (body["error"]["code"], body["error"]["reason"]) == (401, reason), body
            refused_stream = StreamDevice(
                bff.grpc_address, Person(alice.id, alice.username, {"Authorization": f"Bearer {token}"})
            )
            with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
                await refused_stream.connect()
            assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        for device in devices:
            await device.close()
        await client.close()
