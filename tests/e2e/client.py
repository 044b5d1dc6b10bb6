"""A small client of the public HTTP API, as an application would write one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


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
        answer = await self.http.post("/v1/auth/register", json={"username": username, "password": "correct horse"})
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


class Device:
    """One WebSocket connection of a person, as an app keeps it: frames are read in the background and the
    ``message.new`` ones kept by message id (repeats dropped, as API.md asks of clients)."""

    def __init__(self, ws_url: str, person: Person) -> None:
        self.url = f"{ws_url}?token={person.headers['Authorization'].removeprefix('Bearer ')}"
        self.messages: dict[str, dict[str, Any]] = {}
        self.frames: list[dict[str, Any]] = []
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def connect(self, timeout_s: float = 15) -> str:
        """Open the socket and wait for ``ready``; answers the session id."""
        async with asyncio.timeout(timeout_s):
            self._socket = await connect(self.url, max_size=None)
            ready = json.loads(await self._socket.recv())
        assert ready["type"] == "ready", ready
        self._reader = asyncio.create_task(self._read())
        return str(ready["session_id"])

    async def _read(self) -> None:
        assert self._socket is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._socket:
                frame = json.loads(raw)
                self.frames.append(frame)
                if frame["type"] == "message.new":
                    self.messages.setdefault(str(frame["message"]["id"]), frame["message"])
                self._arrived.set()

    async def wait_for(self, message_ids: set[str], timeout_s: float) -> set[str]:
        """Wait (bounded) until every one of ``message_ids`` arrived; answers those still missing."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not message_ids <= self.messages.keys():
                    self._arrived.clear()
                    await self._arrived.wait()
        return message_ids - self.messages.keys()

    async def frame(self, kind: str, timeout_s: float) -> dict[str, Any]:
        """The first frame of type ``kind``, waiting (bounded) for it."""
        async with asyncio.timeout(timeout_s):
            while not (found := [frame for frame in self.frames if frame["type"] == kind]):
                self._arrived.clear()
                await self._arrived.wait()
        return found[0]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
