"""The transports as an outsider meets them, through the public ports of ``tidings dev`` on free ports: the
internal ``Deliver`` is not on the public gRPC port (nor listed by reflection) and needs the shared secret on the
internal one; ``/metrics`` is only on the metrics listener; an oversized WebSocket frame is refused unread; slow
clients are cut off and one address holds a bounded number of connections; a revoked user's open WebSocket stops
taking sends within the 5 s revocation cache."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.client import Client, Device
from tests.e2e.fleet import ROOT, Fleet, port_env
from tidings.api.account.v1 import account_pb2, account_pb2_grpc
from tidings.api.chat.v1 import chat_pb2
from tidings.api.gateway.v1 import delivery_pb2, delivery_pb2_grpc, gateway_pb2
from tidings.bench.system import free_port

LIVE_S = 30
# The bff's read timeouts and per-address cap in these tests (short, so the slow-client test is quick).
SLOW_TIMEOUT_S = 1.0
CAP = 16
CUT_OFF_S = 10.0


@dataclass
class Dev:
    fleet: Fleet
    http: str
    ws: str
    grpc: str
    internal_grpc: str
    metrics: str
    account_grpc: str


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[Dev]:
    """``tidings dev`` with every listener on a free port."""
    bff = {"http": free_port(), "grpc": free_port(), "internal": free_port()}
    env = port_env("bff", bff["http"], bff["grpc"], internal=bff["internal"])
    metrics_port = int(env["TIDINGS_MODULES__BFF__METRICS__PORT"])
    for name in ("account", "chat"):
        env |= port_env(name, free_port(), free_port())
    for name in ("job", "task", "admin"):
        env |= port_env(name, free_port())
    env |= {
        "TIDINGS_MODULES__BFF__HEADER_TIMEOUT_S": str(SLOW_TIMEOUT_S),
        "TIDINGS_MODULES__BFF__BODY_TIMEOUT_S": str(SLOW_TIMEOUT_S),
        "TIDINGS_MODULES__BFF__MAX_CONNECTIONS_PER_CLIENT": str(CAP),
    }
    fleet = Fleet(ROOT / "configs" / "dev.yaml", tmp_path, env=env)
    try:
        await fleet.start("dev", ready_port=bff["http"])
        for name in ("account", "chat", "job"):
            fleet.processes["dev"].ready_port = int(env[f"TIDINGS_MODULES__{name.upper()}__HTTP__PORT"])
            await fleet.wait_ready("dev")
        yield Dev(
            fleet,
            f"http://127.0.0.1:{bff['http']}",
            f"ws://127.0.0.1:{bff['http']}/v1/ws",
            f"127.0.0.1:{bff['grpc']}",
            f"127.0.0.1:{bff['internal']}",
            f"http://127.0.0.1:{metrics_port}",
            f"127.0.0.1:{env['TIDINGS_MODULES__ACCOUNT__GRPC__PORT']}",
        )
    finally:
        await fleet.close()


def forged(session_id: str, conversation_id: str, sender_id: str) -> delivery_pb2.DeliverRequest:
    message = chat_pb2.Message(
        id=1, conversation_id=int(conversation_id), seq=1, sender_id=int(sender_id), text="forged"
    )
    event = gateway_pb2.Event(message_new=gateway_pb2.MessageNew(message=message))
    return delivery_pb2.DeliverRequest(deliveries=[delivery_pb2.Delivery(session_ids=[session_id], event=event)])


async def reflection_status(channel: grpc.aio.Channel) -> grpc.StatusCode:
    """The status a reflection call ends with: OK where the service runs, UNIMPLEMENTED where it does not.

    The call sends no request, only its headers and the end of its stream: the server decides on the method at
    the call's start, and a request written while it refuses could end the call with a client-side INTERNAL
    instead of the status the server sent."""
    requests: list[reflection_pb2.ServerReflectionRequest] = []
    call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter(requests), timeout=5)
    try:
        async for _ in call:
            call.cancel()
            return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        return error.code()
    code: grpc.StatusCode = await call.code()
    return code


async def read_until_closed(socket: ClientConnection) -> None:
    async with asyncio.timeout(10):
        while True:
            await socket.recv()


def internal_secret() -> str:
    config = yaml.safe_load((ROOT / "configs" / "dev.yaml").read_text())
    return str(config["auth"]["internal_secret"])


async def test_deliver_is_internal_only_and_needs_the_shared_secret(dev: Dev) -> None:
    client = Client(dev.http)
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    device = Device(dev.ws, alice)
    session_id = await device.connect()
    request = forged(session_id, conv["id"], bob.id)
    try:
        async with grpc.aio.insecure_channel(dev.grpc) as public:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await delivery_pb2_grpc.DeliveryServiceStub(public).Deliver(request, timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
            # Reflection is off on the public port: nothing lists the services there.
            assert await reflection_status(public) is grpc.StatusCode.UNIMPLEMENTED
        async with grpc.aio.insecure_channel(dev.account_grpc) as account:
            # ... while an internal module answers the same call.
            assert await reflection_status(account) is grpc.StatusCode.OK

        async with grpc.aio.insecure_channel(dev.internal_grpc) as internal:
            stub = delivery_pb2_grpc.DeliveryServiceStub(internal)
            for metadata in ((), (("x-tidings-internal-secret", "not-the-secret"),)):
                with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
                    await stub.Deliver(request, timeout=5, metadata=metadata)
                assert unauthenticated.value.code() is grpc.StatusCode.UNAUTHENTICATED
            health = await health_pb2_grpc.HealthStub(internal).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            # The push job holds the secret: a real message still arrives, through the internal listener.
            sent = await client.send(bob, conv["id"], "real")
            assert sent.status_code == 201, sent.text
            message_id = sent.json()["message"]["id"]
            assert await device.wait_for({message_id}, LIVE_S) == set()
            accepted = await stub.Deliver(
                forged(session_id, conv["id"], bob.id),
                timeout=5,
                metadata=(("x-tidings-internal-secret", internal_secret()),),
            )
            assert list(accepted.gone_session_ids) == []
        await asyncio.sleep(0.5)
        texts = [frame["message"]["text"] for frame in device.frames if frame["type"] == "message.new"]
        # Only what the secret's holder delivered: the forgeries on the public port and without it never arrived.
        assert texts.count("forged") == 1
        assert "real" in texts
    finally:
        await device.close()
        await client.close()


async def test_metrics_are_served_on_the_metrics_listener_only(dev: Dev) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{dev.http}/metrics")).status_code == 404
        scraped = await http.get(f"{dev.metrics}/metrics")
        assert scraped.status_code == 200
        assert "tidings_bff_connections" in scraped.text
        assert (await http.head(f"{dev.http}/")).status_code == 200
        assert (await http.get(f"{dev.http}/docs")).status_code == 404


async def test_an_oversized_websocket_frame_is_refused_unread(dev: Dev) -> None:
    client = Client(dev.http)
    alice = await client.register("alice")
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    try:
        async with connect(f"{dev.ws}?token={token}", max_size=None) as socket:
            assert json.loads(await socket.recv())["type"] == "ready"
            # Just under the limit: read, and answered with an error frame (an unknown type).
            await socket.send(json.dumps({"type": "x", "pad": "a" * 60_000}))
            answer = json.loads(await socket.recv())
            assert answer["type"] == "error"
            await socket.send("a" * (1 << 20))  # 1 MiB: over the 64 KiB limit
            with pytest.raises(ConnectionClosed) as closed:
                await read_until_closed(socket)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009  # message too big
    finally:
        with contextlib.suppress(Exception):
            await client.close()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(CUT_OFF_S):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def test_slow_clients_are_cut_off_and_one_address_holds_a_bounded_number_of_connections(dev: Dev) -> None:
    port = int(dev.http.rpartition(":")[2])
    # A connection that never sends a request.
    idle_reader, idle = await asyncio.open_connection("127.0.0.1", port)
    # Headers a line at a time, and a body a byte at a time, each slower than the timeout allows in all.
    slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
    slow.write(b"POST /v1/auth/login HTTP/1.1\r\n")
    body_reader, body = await asyncio.open_connection("127.0.0.1", port)
    body.write(
        b"POST /v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n"
    )
    answers = [asyncio.create_task(until_closed(reader)) for reader in (idle_reader, slow_reader, body_reader)]
    for _ in range(int(CUT_OFF_S / 0.25)):
        if all(answer.done() for answer in answers):
            break
        await asyncio.sleep(0.25)
        if not answers[1].done():
            slow.write(b"x-slow: 1\r\n")
        if not answers[2].done():
            body.write(b" ")
    idle_answer, slow_answer, body_answer = [await answer for answer in answers]
    assert idle_answer == b""
    assert slow_answer.startswith(b"HTTP/1.1 408 ")
    assert b" 200 " not in body_answer
    assert b" 401 " not in body_answer  # never read to the end, so never answered
    for writer in (idle, slow, body):
        writer.close()

    # The public gRPC port: a connection that never starts its HTTP/2 handshake is closed as soon.
    grpc_reader, grpc_writer = await asyncio.open_connection("127.0.0.1", int(dev.grpc.rpartition(":")[2]))
    await until_closed(grpc_reader)
    grpc_writer.close()

    # The cap: connections beyond it from one address are closed at once; the ones held still work.
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CAP)]
    try:
        extra_reader, extra = await asyncio.open_connection("127.0.0.1", port)
        assert await until_closed(extra_reader) == b""
        extra.close()
        reader, writer = held[0]
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert (await until_closed(reader)).startswith(b"HTTP/1.1 200 ")
    finally:
        for _, writer in held:
            writer.close()


async def test_a_revoked_user_s_open_websocket_is_ended_and_nothing_more_is_sent(dev: Dev) -> None:
    client = Client(dev.http)
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    device = Device(dev.ws, alice)
    await device.connect()
    try:
        first = await device.ask({"type": "send", "conversation_id": conv["id"], "client_msg_id": "m-1", "text": "hi"})
        assert first["type"] == "sent", first
        # Alice logs out everywhere (account revokes her tokens): her open socket is told, then closed.
        async with grpc.aio.insecure_channel(dev.account_grpc) as channel:
            revoke = account_pb2.RevokeTokensRequest(user_id=int(alice.id), reason="log out everywhere")
            await account_pb2_grpc.AccountServiceStub(channel).RevokeTokens(revoke, timeout=5)
        await device.wait_closed(LIVE_S)
        assert device.frames[-1]["type"] == "session.ended"
        assert device.frames[-1]["reason"] == "TOKEN_REVOKED"
        assert device.close_code == 4401
        await client.wait_for_max_seq(bob, conv["id"], first["message"]["seq"])
        history = await client.history(bob, conv["id"], after_seq=0)
        assert [message["text"] for message in history["messages"]] == ["hi"]
    finally:
        await device.close()
        await client.close()
