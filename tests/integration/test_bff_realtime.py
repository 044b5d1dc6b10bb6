"""Live connections through real servers: uvicorn for ``GET /v1/ws`` (with the ``websockets`` client), grpc.aio
for ``Gateway/Connect`` and ``DeliveryService/Deliver``, the route table in Redis. Account and chat are fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc
import pytest
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.unit.bff.fakes import NOW, FakeAccounts, FakeChats
from tidings.api.chat.v1 import chat_pb2
from tidings.api.gateway.v1 import delivery_pb2, delivery_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from tidings.bench.system import free_port
from tidings.bff import server
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.hub import Hub
from tidings.bff.data.metrics import PrometheusRealtimeMetrics
from tidings.bff.data.relay import GrpcRelay
from tidings.bff.service import ws
from tidings.bff.service.connection import Connections
from tidings.bff.service.delivery import DeliveryServicer
from tidings.bff.service.gateway import GatewayServicer
from tidings.bff.service.gateway import add_to_server as add_gateway_to_server
from tidings.bff.wire import quotas, realtime_options
from tidings.conf import LimitsConf, RealtimeConf
from tidings.pkg import log, trace
from tidings.pkg.conf import Listen
from tidings.pkg.middleware.grpc import server_interceptors
from tidings.pkg.pbtime import timestamp
from tidings.pkg.ratelimit import MemoryRateLimiter
from tidings.pkg.transport.grpc import GrpcServer
from tidings.pkg.transport.http import HttpServer
from tidings.realtime.delivery import DeliveryClient
from tidings.realtime.routes import RedisRouteTable

BIG = 2**62 + 5
SECRET = "integration-internal-secret-0123456789abc"
WAIT_S = 10  # a bound on waiting for a frame, so a broken server fails the test instead of hanging it


class Bff:
    """One bff instance as ``wire`` builds it, on free ports, with fakes behind it."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        conf = RealtimeConf(max_frame_bytes=1024, queue_size=64)
        http_port, grpc_port, internal_port = free_port(), free_port(), free_port()
        self.address = f"127.0.0.1:{internal_port}"
        self.grpc_address = f"127.0.0.1:{grpc_port}"
        self.ws_url = f"ws://127.0.0.1:{http_port}/v1/ws"
        self.accounts = FakeAccounts()
        self.chats = FakeChats()
        self.routes = RedisRouteTable(client, ttl_s=conf.route_ttl_s, prefix=prefix)
        self.registry = CollectorRegistry()
        metrics = PrometheusRealtimeMetrics(self.registry)
        self.hub = Hub(
            instance=self.address,
            options=realtime_options(conf),
            routes=self.routes,
            relay=GrpcRelay(DeliveryClient(timeout_s=2, secret=SECRET)),
            accounts=self.accounts,
            chats=self.chats,
            metrics=metrics,
            quotas=quotas(MemoryRateLimiter(), LimitsConf(), conf),
            request_timeout_s=5,
            logger=log.get("realtime"),
        )
        frames = Frames(self.hub, self.chats, self.accounts)
        connections = Connections(
            self.accounts, self.hub, frames, metrics, request_timeout_s=5, max_frame_bytes=conf.max_frame_bytes
        )
        app = server.http_app([], request_timeout_s=5, routers=[ws.router(connections)])
        self.http = HttpServer("bff", app, Listen(port=http_port))
        gateway = GatewayServicer(connections)
        delivery = DeliveryServicer(self.hub)

        self.grpc = GrpcServer(
            "bff",
            Listen(port=grpc_port),
            [lambda grpc_server: add_gateway_to_server(gateway, grpc_server)],
            interceptors=server_interceptors(request_timeout_s=5, trust_trace_context=False),
            reflection=False,
        )
        self.internal = GrpcServer(
            "bff internal",
            Listen(port=internal_port),
            [lambda grpc_server: delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(delivery, grpc_server)],
            interceptors=server_interceptors(request_timeout_s=5, shared_secret=SECRET),
            reflection=False,
        )
        # What the push job holds: a client of DeliveryService by instance address, with the shared secret.
        self.push = DeliveryClient(timeout_s=5, secret=SECRET)

    async def start(self) -> None:
        await self.hub.start()
        await self.internal.start()
        await self.grpc.start()
        await self.http.start()

    async def stop(self) -> None:
        await self.hub.stop()
        await self.grpc.stop()
        await self.internal.stop()
        await self.http.stop()
        await self.push.close()

    async def deliver(self, session_ids: list[str], event: gateway_pb2.Event) -> list[str]:
        request = delivery_pb2.DeliverRequest(deliveries=[delivery_pb2.Delivery(session_ids=session_ids, event=event)])
        return list((await self.push.deliver(self.address, request)).gone_session_ids)


@pytest.fixture(scope="module", autouse=True)
def tracing() -> None:
    """A real TracerProvider, as ``tidings serve`` installs: every frame gets a real trace id."""
    trace.configure("tidings-test")


@pytest.fixture
async def bff(redis_client: redis.Redis, redis_prefix: str) -> AsyncIterator[Bff]:
    bff = Bff(redis_client, redis_prefix)
    await bff.start()
    yield bff
    await bff.stop()


async def receive(websocket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        frame: dict[str, Any] = json.loads(await websocket.recv())
        return frame


async def until(websocket: ClientConnection, kind: str) -> list[dict[str, Any]]:
    """Frames up to and including the first of type ``kind``."""
    seen = [await receive(websocket)]
    while seen[-1]["type"] != kind:
        seen.append(await receive(websocket))
    return seen


def message_event(conversation_id: int) -> gateway_pb2.Event:
    message = chat_pb2.Message(
        id=BIG,
        conversation_id=conversation_id,
        seq=12,
        sender_id=BIG - 1,
        client_msg_id="c-9",
        text="hello",
        created_at=timestamp(NOW),
    )
    return gateway_pb2.Event(message_new=gateway_pb2.MessageNew(message=message))


# WebSocket ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?token=", "?token=forged", "?token=token-999"])
async def test_a_bad_token_is_refused_at_the_handshake_with_401(bff: Bff, query: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(bff.ws_url + query):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body or b"{}")["error"]["code"] == 401


async def test_ready_comes_first_and_a_deliver_call_over_grpc_reaches_the_socket(bff: Bff) -> None:
    alice, token = bff.accounts.add("alice")
    async with connect(f"{bff.ws_url}?token={token}") as websocket:
        ready = await receive(websocket)
        assert ready["type"] == "ready"
        session_id = ready["session_id"]
        assert await bff.routes.routes_for([alice]) == {alice: {session_id: bff.address}}
        assert await bff.deliver([session_id, "not-here"], message_event(77)) == ["not-here"]
        assert await receive(websocket) == {
            "type": "message.new",
            "message": {
                "id": str(BIG),
                "conversation_id": "77",
                "seq": 12,
                "sender_id": str(BIG - 1),
                "client_msg_id": "c-9",
                "text": "hello",
                "created_at": "2027-01-15T08:00:00.000Z",
                "recalled": False,
            },
        }
    await bff.hub.drain()
    assert await bff.routes.routes_for([alice]) == {}


async def test_bad_frames_get_error_frames_and_the_connection_stays_open(bff: Bff) -> None:
    _, token = bff.accounts.add("alice")
    async with connect(f"{bff.ws_url}?token={token}") as websocket:
        await until(websocket, "ready")
        for frame, field in [
            ("not json", "frame"),
            ('{"type": "shout"}', "type"),
            ('{"type": "typing"}', "conversation_id"),
            (json.dumps({"type": "ping", "pad": "x" * 2000}), "frame"),
        ]:
            await websocket.send(frame)
            error = await receive(websocket)
            assert error["type"] == "error"
            assert error["error"]["code"] == 400
            assert error["error"]["metadata"]["field"] == field
            assert len(error["error"]["trace_id"]) == 32
        await websocket.send(json.dumps({"type": "ping", "ref": 1}))
        assert await receive(websocket) == {"type": "pong", "ref": 1}


async def test_typing_reaches_the_other_member_and_not_the_typer(bff: Bff) -> None:
    alice, alice_token = bff.accounts.add("alice")
    bob, bob_token = bff.accounts.add("bob")
    direct, _ = await bff.chats.create_direct(alice, bob)
    async with (
        connect(f"{bff.ws_url}?token={bob_token}") as bob_socket,
        connect(f"{bff.ws_url}?token={alice_token}") as alice_socket,
    ):
        await until(bob_socket, "ready")
        await until(alice_socket, "ready")
        await alice_socket.send(json.dumps({"type": "typing", "conversation_id": str(direct.id)}))
        heard = await until(bob_socket, "typing")
        assert heard[-1] == {"type": "typing", "conversation_id": str(direct.id), "user_id": str(alice)}
        # Alice's own frames: had typing come back to her, it would be queued before this pong.
        await alice_socket.send(json.dumps({"type": "ping"}))
        assert all(frame["type"] != "typing" for frame in await until(alice_socket, "pong"))


async def test_a_send_frame_is_acknowledged_with_the_stored_message(bff: Bff) -> None:
    alice, token = bff.accounts.add("alice")
    bob, _ = bff.accounts.add("bob")
    direct, _ = await bff.chats.create_direct(alice, bob)
    async with connect(f"{bff.ws_url}?token={token}") as websocket:
        await until(websocket, "ready")
        send = {"type": "send", "ref": "s1", "conversation_id": str(direct.id), "client_msg_id": "c-1", "text": "hi"}
        await websocket.send(json.dumps(send))
        sent = await receive(websocket)
        assert (sent["type"], sent["ref"], sent["duplicate"]) == ("sent", "s1", False)
        assert sent["message"]["text"] == "hi"
        assert sent["message"]["sender_id"] == str(alice)
        await websocket.send(
            json.dumps({"type": "send", "conversation_id": "424242", "client_msg_id": "c", "text": "x"})
        )
        assert (await receive(websocket))["error"]["reason"] == "CONVERSATION_NOT_FOUND"


async def test_a_revoked_token_closes_the_socket_with_4401(bff: Bff) -> None:
    _, token = bff.accounts.add("alice")
    async with connect(f"{bff.ws_url}?token={token}") as websocket:
        ready = await until(websocket, "ready")
        bff.accounts.revoked.add(token)
        session = bff.hub.session(ready[-1]["session_id"])
        assert session is not None
        session.verify_at = 0  # due now, rather than waiting for the interval
        await bff.hub.tick()
        with pytest.raises(ConnectionClosed) as closed:
            await receive(websocket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


async def test_stopping_the_server_closes_sockets_as_going_away(bff: Bff) -> None:
    alice, token = bff.accounts.add("alice")
    async with connect(f"{bff.ws_url}?token={token}") as websocket:
        await until(websocket, "ready")
        await bff.hub.stop()
        with pytest.raises(ConnectionClosed) as closed:
            await receive(websocket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
    assert await bff.routes.routes_for([alice]) == {}


# gRPC stream ----------------------------------------------------------------------------------------------------


class Stream:
    """A native client's ``Gateway/Connect`` call."""

    def __init__(self, bff: Bff, token: str | None) -> None:
        self._channel = grpc.aio.insecure_channel(bff.grpc_address)
        metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        self.call = gateway_pb2_grpc.GatewayStub(self._channel).Connect(metadata=metadata)

    async def send(self, request: gateway_pb2.ConnectRequest) -> None:
        await self.call.write(request)

    async def read(self) -> gateway_pb2.ConnectResponse:
        async with asyncio.timeout(WAIT_S):
            response: gateway_pb2.ConnectResponse = await self.call.read()
            return response

    async def close(self) -> None:
        self.call.cancel()
        await self._channel.close()


@pytest.fixture
async def streams(bff: Bff) -> AsyncIterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        await stream.close()


@pytest.mark.parametrize("token", [None, "forged", "token-999"])
async def test_connect_without_a_valid_token_is_unauthenticated(
    bff: Bff, streams: list[Stream], token: str | None
) -> None:
    stream = Stream(bff, token)
    streams.append(stream)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream.read()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_user_over_the_connection_limit_is_refused_with_resource_exhausted(
    bff: Bff, streams: list[Stream]
) -> None:
    _, token = bff.accounts.add("alice")
    for _ in range(LimitsConf().connections_per_user):
        stream = Stream(bff, token)
        streams.append(stream)
        await stream.call.initial_metadata()
    extra = Stream(bff, token)
    streams.append(extra)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await extra.read()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_connect_answers_with_initial_metadata_then_serves_frames(bff: Bff, streams: list[Stream]) -> None:
    alice, token = bff.accounts.add("alice")
    bob, _ = bff.accounts.add("bob")
    direct, _ = await bff.chats.create_direct(alice, bob)
    stream = Stream(bff, token)
    streams.append(stream)
    metadata = dict(await stream.call.initial_metadata())
    session_id = metadata["x-session-id"]
    assert datetime.fromisoformat(metadata["x-server-time"]).tzinfo is not None
    assert await bff.routes.routes_for([alice]) == {alice: {session_id: bff.address}}

    send = gateway_pb2.SendFrame(conversation_id=direct.id, client_msg_id="c-1", text="hi")
    await stream.send(gateway_pb2.ConnectRequest(ref=5, send=send))
    sent = await stream.read()
    assert (sent.ref, sent.WhichOneof("frame"), sent.sent.message.text, sent.sent.duplicate) == (5, "sent", "hi", False)
    await stream.send(gateway_pb2.ConnectRequest(ref=6, send=send))
    assert (await stream.read()).sent.duplicate

    await stream.send(gateway_pb2.ConnectRequest(ref=7, read=gateway_pb2.ReadFrame(conversation_id=direct.id, seq=9)))
    marked = await stream.read()
    assert (marked.ref, marked.marked.conversation_id, marked.marked.read_seq) == (7, direct.id, 1)

    await stream.send(gateway_pb2.ConnectRequest(ref=8, typing=gateway_pb2.TypingFrame(conversation_id=0)))
    bad = await stream.read()
    assert (bad.ref, bad.error.code, bad.error.metadata["field"]) == (8, 400, "typing.conversation_id")

    await stream.send(gateway_pb2.ConnectRequest(ref=9, send=gateway_pb2.SendFrame(conversation_id=424242)))
    foreign = await stream.read()
    assert (foreign.ref, foreign.error.reason) == (9, "CONVERSATION_NOT_FOUND")

    await stream.send(gateway_pb2.ConnectRequest(ref=10, ping=gateway_pb2.PingFrame()))
    pong = await stream.read()
    assert (pong.ref, pong.WhichOneof("frame")) == (10, "pong")


async def test_a_deliver_call_reaches_the_stream(bff: Bff, streams: list[Stream]) -> None:
    _, token = bff.accounts.add("alice")
    stream = Stream(bff, token)
    streams.append(stream)
    session_id = dict(await stream.call.initial_metadata())["x-session-id"]
    assert await bff.deliver([session_id], message_event(77)) == []
    delivered = await stream.read()
    assert delivered.ref == 0
    assert delivered.event.message_new.message.id == BIG
    assert delivered.event.message_new.message.conversation_id == 77


async def test_a_websocket_and_a_stream_of_one_user_both_get_the_event(bff: Bff, streams: list[Stream]) -> None:
    alice, token = bff.accounts.add("alice")
    stream = Stream(bff, token)
    streams.append(stream)
    async with connect(f"{bff.ws_url}?token={token}") as websocket:
        ready = await until(websocket, "ready")
        await stream.call.initial_metadata()
        routes = (await bff.routes.routes_for([alice]))[alice]
        assert len(routes) == 2
        assert await bff.deliver(sorted(routes), message_event(77)) == []
        assert (await receive(websocket))["message"]["id"] == str(BIG)
        assert (await stream.read()).event.message_new.message.id == BIG
        assert ready[-1]["session_id"] in routes


async def test_a_stream_the_client_half_closes_ends_ok_and_its_route_goes(bff: Bff, streams: list[Stream]) -> None:
    alice, token = bff.accounts.add("alice")
    stream = Stream(bff, token)
    streams.append(stream)
    await stream.call.initial_metadata()
    await stream.call.done_writing()
    async with asyncio.timeout(WAIT_S):
        assert await stream.call.code() == grpc.StatusCode.OK
    await bff.hub.drain()
    assert await bff.routes.routes_for([alice]) == {}


async def test_bytes_that_are_no_frame_get_an_error_frame_and_the_stream_stays_open(bff: Bff) -> None:
    _, token = bff.accounts.add("alice")
    async with grpc.aio.insecure_channel(bff.grpc_address) as channel:
        # A client whose frames are raw bytes, as a broken or hostile one may send.
        connect_raw = channel.stream_stream(
            "/tidings.gateway.v1.Gateway/Connect", response_deserializer=gateway_pb2.ConnectResponse.FromString
        )
        call = connect_raw(metadata=(("authorization", f"Bearer {token}"),))
        await call.write(b"\xff\xff\xff\xff not protobuf")
        async with asyncio.timeout(WAIT_S):
            error = await call.read()
        assert (error.WhichOneof("frame"), error.error.code, error.error.metadata["field"]) == ("error", 400, "frame")
        await call.write(gateway_pb2.ConnectRequest(ref=7, ping=gateway_pb2.PingFrame()).SerializeToString())
        async with asyncio.timeout(WAIT_S):
            pong = await call.read()
        assert (pong.ref, pong.WhichOneof("frame")) == (7, "pong")
        call.cancel()
