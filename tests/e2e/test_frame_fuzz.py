"""Frame fuzzing of a running bff (``tidings dev`` on free ports): hypothesis-generated WebSocket frames and gRPC
``ConnectRequest`` messages (valid, mutated, random bytes; ``tests/frames.py``) on one open connection each.

Every frame gets its answer or an error frame with a reason (400 for what cannot be read, naming the field), echoing
the frame's ref when it had a readable one; nothing is ever a 5XX; the connection stays usable (a ping after each
frame is answered); and at the end the process is alive and ready and logged no unhandled error.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.e2e.client import Client, Device, Person
from tests.e2e.test_realtime import System, start_dev
from tests.frames import connect_bytes, ws_frames
from tidings.api.gateway.v1 import gateway_pb2 as pb

ANSWER_S = 15  # bound on one frame's answer
# Bounded so that each test takes well under a minute on this machine.
FUZZ = settings(
    max_examples=1500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# What answers a client frame, on either transport (the rest are events).
ANSWERS = {"error", "sent", "marked", "pong"}
CONNECT = "/tidings.gateway.v1.Gateway/Connect"
pytestmark = pytest.mark.timeout(120)


@dataclass
class RawStream:
    """A ``Gateway/Connect`` call that writes whatever bytes it is given, as a raw client would."""

    channel: grpc.aio.Channel
    call: Any
    # Refs of the pings that fence each frame's answer off: far from any ref a generator tends to pick.
    fences: itertools.count[int] = field(default_factory=lambda: itertools.count(0xF00D_0000_0000_0000))

    @classmethod
    async def open(cls, address: str, person: Person) -> RawStream:
        channel = grpc.aio.insecure_channel(address)
        connect = channel.stream_stream(CONNECT, response_deserializer=pb.ConnectResponse.FromString)
        call = connect(metadata=(("authorization", person.headers["Authorization"]),))
        async with asyncio.timeout(ANSWER_S):
            assert "x-session-id" in dict(await call.initial_metadata())
        return cls(channel, call)

    async def answers(self, raw: bytes) -> list[pb.ConnectResponse]:
        """What answered ``raw`` (events left out), up to the pong of a ping written right after it."""
        fence = next(self.fences)
        await self.call.write(raw)
        await self.call.write(pb.ConnectRequest(ref=fence, ping=pb.PingFrame()).SerializeToString())
        answers: list[pb.ConnectResponse] = []
        async with asyncio.timeout(ANSWER_S):
            while True:
                response = await self.call.read()
                assert response is not grpc.aio.EOF, f"the stream ended: {await self.call.code()}"
                kind = response.WhichOneof("frame")
                if kind == "pong" and response.ref == fence:
                    return answers
                if kind in ANSWERS:
                    answers.append(response)

    async def close(self) -> None:
        self.call.cancel()
        await self.channel.close()


@dataclass
class Target:
    system: System
    conversation_id: str
    socket: Device
    stream: RawStream

    def alive(self) -> None:
        handle = self.system.fleet.processes["dev"].handle
        assert handle is not None
        assert handle.returncode is None, self.system.fleet.tail("dev")


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[Target]:
    """Alice's WebSocket and gRPC stream on a ``tidings dev``, with a direct conversation to send in; afterwards,
    the process took all of it standing."""
    system = await start_dev(tmp_path)
    bff = system.bffs[0]
    client = Client(bff.http_url)
    try:
        alice, bob = await client.register("alice"), await client.register("bob")
        conversation_id = (await client.direct(alice, bob))["id"]
        socket = Device(bff.ws_url, alice)
        await socket.connect()
        stream = await RawStream.open(bff.grpc_address, alice)
        target = Target(system, conversation_id, socket, stream)
        try:
            yield target
        finally:
            await socket.close()
            await stream.close()
        target.alive()
        assert (await client.http.get("/readyz")).status_code == 200
        log = system.fleet.processes["dev"].log.read_text(errors="replace")
        assert "unhandled error" not in log
    finally:
        await client.close()
        await system.fleet.close()


# WebSocket -------------------------------------------------------------------------------------------------------


async def ws_answers(socket: Device, raw: str | bytes) -> list[dict[str, Any]]:
    """What answered ``raw`` (events left out), up to the pong of a ping sent right after it."""
    seen = len(socket.frames)
    await socket.send_raw(raw)
    fence = f"fence-{uuid.uuid4().hex}"
    await socket.send({"type": "ping", "ref": fence})
    await socket.frame_with_ref(fence, ANSWER_S)
    return [frame for frame in socket.frames[seen:] if frame["type"] in ANSWERS and frame.get("ref") != fence]


def readable_ref(value: object) -> object:
    """The ref the server echoes for a frame's ``ref`` (API.md: a non-negative integer or a string of up to 64)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64:
        return value
    if isinstance(value, str) and len(value) <= 64:
        return value
    return None


def check_error(error: dict[str, Any]) -> None:
    assert 400 <= error["code"] < 500, error
    assert error["reason"], error
    assert error["message"], error
    assert len(error["trace_id"]) == 32, error
    if error["reason"] == "INVALID_ARGUMENT":
        assert error["metadata"]["field"], error


@FUZZ
@given(data=st.data())
async def test_websocket_frames_get_an_answer_or_a_400_and_the_socket_stays_usable(
    target: Target, data: st.DataObject
) -> None:
    raw = data.draw(ws_frames(target.conversation_id), label="frame")
    answers = await ws_answers(target.socket, raw)
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        frame = None
    assert len(answers) <= 1, answers
    event(f"answer: {answers[0]['type']} {answers[0].get('error', {}).get('code', '')}" if answers else "no answer")
    if not answers:  # only a valid typing frame has no answer
        assert isinstance(frame, dict), frame
        assert frame.get("type") == "typing", frame
    else:
        answer = answers[0]
        if answer["type"] == "error":
            check_error(answer["error"])
        if isinstance(frame, dict):
            assert answer.get("ref") == readable_ref(frame.get("ref")), answer
        else:
            assert answer["type"] == "error", answer
            assert (answer["error"]["code"], answer["error"]["metadata"]["field"]) == (400, "frame"), answer
    target.alive()


# gRPC ------------------------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
async def test_connect_requests_get_an_answer_or_an_error_frame_and_the_stream_stays_usable(
    target: Target, data: st.DataObject
) -> None:
    raw = data.draw(connect_bytes(int(target.conversation_id)), label="bytes")
    answers = await target.stream.answers(raw)
    try:
        request: pb.ConnectRequest | None = pb.ConnectRequest.FromString(raw)
    except DecodeError:
        request = None
    assert len(answers) <= 1, answers
    event(f"answer: {answers[0].WhichOneof('frame')} {answers[0].error.code or ''}" if answers else "no answer")
    if not answers:  # only a valid typing frame has no answer
        assert request is not None, raw
        assert request.WhichOneof("frame") == "typing", request
    else:
        answer = answers[0]
        if answer.WhichOneof("frame") == "error":
            error = answer.error
            check_error(
                {"code": error.code, "reason": error.reason, "message": error.message, "trace_id": error.trace_id}
                | {"metadata": dict(error.metadata)}
            )
        if request is None:
            assert answer.WhichOneof("frame") == "error", answer
            assert (answer.ref, answer.error.code, answer.error.metadata["field"]) == (0, 400, "frame"), answer
        else:
            assert answer.ref == request.ref, (request, answer)
    target.alive()
