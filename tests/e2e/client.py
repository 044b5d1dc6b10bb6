"""A small client of the public HTTP API, as an application would write one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tidings.api.gateway.v1 import gateway_pb2, gateway_pb2_grpc

PASSWORD = "correct horse"


@dataclass
class Person:
    id: str
    username: str
    headers: dict[str, str]


class Client:
    def __init__(self, base_url: str = "http://127.0.0.1:8080") -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=15)

    async def close(self) -> None:
        await self.http.aclose()

    async def register(self, prefix: str) -> Person:
        username = f"{prefix}_{uuid.uuid4().hex[:8]}"
        answer = await self.http.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return Person(body["user"]["id"], username, {"Authorization": f"Bearer {body['access_token']}"})

    async def direct(self, me: Person, peer: Person) -> dict[str, Any]:
        answer = await self.http.post(
            "/v1/conversations", json={"kind": "direct", "peer_id": peer.id}, headers=me.headers
        )
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def group(self, me: Person, title: str, members: list[Person]) -> dict[str, Any]:
        answer = await self.http.post(
            "/v1/conversations",
            json={"kind": "group", "title": title, "member_ids": [m.id for m in members]},
            headers=me.headers,
        )
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def send(
        self, me: Person, conversation_id: str, text: str, client_msg_id: str | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"/v1/conversations/{conversation_id}/messages",
            json={"client_msg_id": client_msg_id or uuid.uuid4().hex, "text": text},
            headers=me.headers,
        )

    async def deliver(
        self, me: Person, conversation_id: str, text: str, client_msg_id: str, attempts: int = 5
    ) -> httpx.Response:
        """Send as API.md tells a client to: a 503 (UNAVAILABLE) is retried with the same ``client_msg_id`` after a
        short pause, a bounded number of times; any other answer is returned as it is."""
        answer = await self.send(me, conversation_id, text, client_msg_id)
        for attempt in range(attempts - 1):
            if answer.status_code != 503:
                break
            await asyncio.sleep(float(answer.headers.get("Retry-After", 0.2 * 2**attempt)))
            answer = await self.send(me, conversation_id, text, client_msg_id)
        return answer

    async def history(self, me: Person, conversation_id: str, **params: int) -> dict[str, Any]:
        answer = await self.http.get(f"/v1/conversations/{conversation_id}/messages", params=params, headers=me.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def everything(self, me: Person, conversation_id: str) -> list[dict[str, Any]]:
        """The whole history, paging forward by seq as a syncing client does."""
        messages: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.history(me, conversation_id, after_seq=after, limit=200)
            messages.extend(page["messages"])
            if not page["has_more"]:
                return messages
            after = page["messages"][-1]["seq"]

    async def catch_up(self, me: Person, device: Live) -> None:
        """What a reconnecting app does (README): ``GET /v1/sync`` for each conversation's ``max_seq``, then history
        after the first seq it lacks, up to ``max_seq``; kept by message id, so what also came live shows once."""
        answer = await self.http.get("/v1/sync", headers=me.headers)
        assert answer.status_code == 200, answer.text
        for conversation in answer.json()["conversations"]:
            have = {m["seq"] for m in device.messages.values() if m["conversation_id"] == conversation["id"]}
            after = next(seq for seq in range(1, conversation["max_seq"] + 2) if seq not in have) - 1
            while after < conversation["max_seq"]:
                page = await self.history(me, conversation["id"], after_seq=after, limit=200)
                for message in page["messages"]:
                    device.messages.setdefault(str(message["id"]), message)
                if not page["messages"]:
                    break
                after = page["messages"][-1]["seq"]

    async def conversation(self, me: Person, conversation_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/v1/conversations/{conversation_id}", headers=me.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def wait_for_max_seq(self, me: Person, conversation_id: str, seq: int, timeout_s: float = 30) -> None:
        """Acknowledged messages become visible once persisted; wait (bounded) until ``seq`` is."""
        deadline = time.monotonic() + timeout_s
        while (await self.conversation(me, conversation_id))["max_seq"] < seq:
            assert time.monotonic() < deadline, f"max_seq did not reach {seq} within {timeout_s}s"
            await asyncio.sleep(0.1)


class Live:
    """What a connected app keeps, whatever carries its events: every event in arrival order (WebSocket shapes,
    ids as strings) and the ``message.new`` ones by message id (repeats dropped, as API.md asks of clients)."""

    def __init__(self, targets: list[str]) -> None:
        # Where the app connects: the instance it uses first, then those it falls back on (``reconnect``).
        self.targets = targets
        self.target = targets[0]
        self.messages: dict[str, dict[str, Any]] = {}
        self.frames: list[dict[str, Any]] = []
        # Answers to the app's own frames, by the ``ref`` they echo.
        self.answers: dict[object, dict[str, Any]] = {}
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, timeout_s: float = 15) -> str:
        """Connect to ``target``; answers the session id."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def reconnect(self, timeout_s: float = 30) -> str:
        """After the connection broke: try each target in turn, from the one it had, until one takes it; answers
        the new session id. What arrived before is kept (the app merges by message id)."""
        await self.close()
        deadline = time.monotonic() + timeout_s
        start = self.targets.index(self.target)
        for attempt in itertools.count():
            self.target = self.targets[(start + attempt) % len(self.targets)]
            try:
                return await self.connect(timeout_s=max(0.1, deadline - time.monotonic()))
            except (OSError, InvalidHandshake, TimeoutError, grpc.aio.AioRpcError):
                assert time.monotonic() < deadline, f"no instance took the connection within {timeout_s}s"
                await asyncio.sleep(0.1 if (attempt + 1) % len(self.targets) else 0.5)
        raise AssertionError("unreachable")

    @property
    def open(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def wait_closed(self, timeout_s: float) -> None:
        """Wait (bounded) until the server's side of the connection is gone."""
        async with asyncio.timeout(timeout_s):
            while self.open:
                self._arrived.clear()
                await self._arrived.wait()

    def _keep(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        if "ref" in frame:
            self.answers[frame["ref"]] = frame
        if frame["type"] == "message.new":
            self.messages.setdefault(str(frame["message"]["id"]), frame["message"])
        self._arrived.set()

    def arrivals(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every ``message.new`` of one conversation in the order it arrived, repeats included."""
        return [
            frame["message"]
            for frame in self.frames
            if frame["type"] == "message.new" and frame["message"]["conversation_id"] == conversation_id
        ]

    async def wait_for(self, message_ids: set[str], timeout_s: float) -> set[str]:
        """Wait (bounded) until every one of ``message_ids`` arrived; answers those still missing."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not message_ids <= self.messages.keys():
                    self._arrived.clear()
                    await self._arrived.wait()
        return message_ids - self.messages.keys()

    async def frame(self, kind: str, timeout_s: float, **fields: object) -> dict[str, Any]:
        """The first frame of type ``kind`` (with ``fields`` as given), waiting (bounded) for it."""

        def matches(frame: dict[str, Any]) -> bool:
            return frame["type"] == kind and all(frame.get(key) == value for key, value in fields.items())

        async with asyncio.timeout(timeout_s):
            while not (found := [frame for frame in self.frames if matches(frame)]):
                self._arrived.clear()
                await self._arrived.wait()
        return found[0]


class Device(Live):
    """One WebSocket connection of a person, as an app keeps it: frames are read in the background. ``others``
    are further instances' addresses the app falls back on when its connection breaks (``reconnect``)."""

    def __init__(self, ws_url: str, person: Person, *others: str) -> None:
        super().__init__([ws_url, *others])
        self.token = person.headers["Authorization"].removeprefix("Bearer ")
        self._socket: ClientConnection | None = None
        # The close code the connection ended with, once it ended.
        self.close_code: int | None = None
        self._refs = itertools.count(1)

    async def connect(self, timeout_s: float = 15) -> str:
        """Open the socket and wait for ``ready``; answers the session id."""
        async with asyncio.timeout(timeout_s):
            self._socket = await connect(f"{self.target}?token={self.token}", max_size=None)
            ready = json.loads(await self._socket.recv())
        assert ready["type"] == "ready", ready
        self._reader = asyncio.create_task(self._read())
        return str(ready["session_id"])

    async def _read(self) -> None:
        assert self._socket is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._socket:
                self._keep(json.loads(raw))
        self.close_code = self._socket.close_code
        self._arrived.set()

    async def send(self, frame: dict[str, Any]) -> None:
        """Write one client frame as it is (no answer awaited)."""
        assert self._socket is not None
        await self._socket.send(json.dumps(frame))

    async def send_raw(self, raw: str | bytes) -> None:
        assert self._socket is not None
        await self._socket.send(raw)

    async def ask(self, frame: dict[str, Any], timeout_s: float = 15) -> dict[str, Any]:
        """Send ``frame`` with a fresh ``ref`` and wait (bounded) for the frame that answers it."""
        ref = f"r{next(self._refs)}"
        await self.send({**frame, "ref": ref})
        return await self.frame_with_ref(ref, timeout_s)

    async def frame_with_ref(self, ref: object, timeout_s: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while ref not in self.answers:
                assert self.open, "the connection closed"
                self._arrived.clear()
                await self._arrived.wait()
        return self.answers[ref]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self._socket = self._reader = None


class StreamDevice(Live):
    """One ``tidings.gateway.v1.Gateway/Connect`` stream of a person, as a native app keeps it: responses are read
    in the background; events are kept in the WebSocket's shapes so both kinds of device compare directly."""

    def __init__(self, address: str, person: Person, *others: str) -> None:
        super().__init__([address, *others])
        self.metadata = (("authorization", person.headers["Authorization"]),)
        self.replies: dict[int, gateway_pb2.ConnectResponse] = {}
        self.status: grpc.StatusCode | None = None
        # The error the stream ended with, if it ended with one.
        self.error: grpc.aio.AioRpcError | None = None
        self._channel: grpc.aio.Channel | None = None
        self._call: grpc.aio.StreamStreamCall | None = None
        self._refs = itertools.count(1)
        # A gRPC call takes one write at a time.
        self._writing = asyncio.Lock()

    async def connect(self, timeout_s: float = 15) -> str:
        """Open the stream and wait for its initial metadata; answers the session id (``x-session-id``)."""
        self._channel = grpc.aio.insecure_channel(self.target)
        self._call = gateway_pb2_grpc.GatewayStub(self._channel).Connect(metadata=self.metadata)
        self.status = None
        try:
            async with asyncio.timeout(timeout_s):
                metadata = dict(await self._call.initial_metadata())
                if "x-session-id" not in metadata:
                    await self._call.read()  # the call failed before it began: raises its status
                    raise AssertionError(f"a stream began without x-session-id: {metadata}")
        except BaseException:
            await self.close()
            raise
        self._reader = asyncio.create_task(self._read())
        return str(metadata["x-session-id"])

    async def _read(self) -> None:
        assert self._call is not None
        try:
            async for response in self._call:
                if response.ref:
                    self.replies[response.ref] = response
                    self._arrived.set()
                elif response.WhichOneof("frame") == "event":
                    self._keep(_event_json(response.event))
        except grpc.aio.AioRpcError as ended:
            self.status = ended.code()
            self.error = ended
        else:
            self.status = await self._call.code()
        self._arrived.set()

    async def send(self, request: gateway_pb2.ConnectRequest) -> None:
        assert self._call is not None
        async with self._writing:
            await self._call.write(request)

    async def ask(self, request: gateway_pb2.ConnectRequest, timeout_s: float = 15) -> gateway_pb2.ConnectResponse:
        """Send ``request`` with a fresh ``ref`` and wait (bounded) for the response that answers it."""
        ref = next(self._refs)
        request.ref = ref
        await self.send(request)
        async with asyncio.timeout(timeout_s):
            while ref not in self.replies:
                assert self.open, f"the stream ended: {self.status}"
                self._arrived.clear()
                await self._arrived.wait()
        return self.replies[ref]

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()
        self._channel = self._call = self._reader = None


def _event_json(event: gateway_pb2.Event) -> dict[str, Any]:
    """An event of the stream in the WebSocket's shape (API.md), for the kinds these tests look at."""
    kind = event.WhichOneof("kind")
    if kind == "message_new":
        m = event.message_new.message
        message = {
            "id": str(m.id),
            "conversation_id": str(m.conversation_id),
            "seq": m.seq,
            "sender_id": str(m.sender_id),
            "client_msg_id": m.client_msg_id,
            "text": m.text,
        }
        return {"type": "message.new", "message": message}
    if kind in ("message_removed", "message_recalled"):
        gone = event.message_removed if kind == "message_removed" else event.message_recalled
        frame: dict[str, Any] = {
            "type": kind.replace("_", "."),
            "conversation_id": str(gone.conversation_id),
            "message_id": str(gone.message_id),
            "seq": gone.seq,
        }
        if isinstance(gone, gateway_pb2.MessageRemoved):
            frame["reason"] = gone.reason
        return frame
    if kind == "typing":
        return {
            "type": "typing",
            "conversation_id": str(event.typing.conversation_id),
            "user_id": str(event.typing.user_id),
        }
    if kind == "presence":
        status = gateway_pb2.PresenceStatus.Name(event.presence.status).removeprefix("PRESENCE_STATUS_").lower()
        return {"type": "presence", "user_id": str(event.presence.user_id), "status": status}
    if kind == "session_ended":
        ended = event.session_ended
        return {"type": "session.ended", "reason": ended.reason, "message": ended.message}
    return {"type": kind or "unknown"}
