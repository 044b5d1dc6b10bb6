"""Nothing acknowledged is lost, nothing is stored twice, order per conversation holds — while the middleware and
our own processes are killed and restarted under a stream of sends.

Each test runs the modules as separate processes on MariaDB, Redis and Kafka (``stack`` shape), keeps several
clients sending, breaks one thing mid-stream, and lets clients retry failed sends with the same
``client_msg_id`` as a real client does. Afterwards history must hold every acknowledged message exactly once,
with the id and seq it was acknowledged with, in seq order.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.client import Client, Person
from tests.e2e.conftest import fresh_database, stack_fleet
from tests.e2e.fleet import Fleet
from tests.scripts import run_script

CLIENTS = 4
PER_CLIENT = 25
RETRY_FOR_S = 90


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Fleet]:
    async with fresh_database() as database_url:
        fleet = await stack_fleet(tmp_path, database_url)
        try:
            yield fleet
        finally:
            await fleet.close()


async def send_until_acked(client: Client, me: Person, conversation_id: str, text: str) -> dict[str, Any]:
    """Send once, and on any failure retry the same ``client_msg_id`` until acknowledged (bounded)."""
    client_msg_id = uuid.uuid4().hex
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            answer = await client.send(me, conversation_id, text, client_msg_id=client_msg_id)
            if answer.status_code in (200, 201):
                message: dict[str, Any] = answer.json()["message"]
                return message
            assert answer.status_code >= 500 or answer.status_code == 429, answer.text
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{client_msg_id} not acknowledged within {RETRY_FOR_S}s"
        await asyncio.sleep(0.25)


async def survive(
    fleet: Fleet, fault: Callable[[], Awaitable[object]], *, clients: int = CLIENTS, per_client: int = PER_CLIENT
) -> None:
    client = Client()
    try:
        people = [await client.register(f"writer{n}") for n in range(clients)]
        reader = await client.register("reader")
        group = await client.group(people[0], "durable", [*people[1:], reader])
        acked: list[list[dict[str, Any]]] = [[] for _ in people]
        halfway = asyncio.Event()

        async def writer(index: int) -> None:
            for n in range(per_client):
                message = await send_until_acked(client, people[index], group["id"], f"{index}:{n}")
                acked[index].append(message)
                if index == 0 and n == per_client // 3:
                    halfway.set()

        async def breaker() -> None:
            await halfway.wait()
            await fault()

        async with asyncio.TaskGroup() as tasks:
            for index in range(clients):
                tasks.create_task(writer(index))
            tasks.create_task(breaker())

        everything = [message for messages in acked for message in messages]
        highest = max(message["seq"] for message in everything)
        await client.wait_for_max_seq(reader, group["id"], highest, timeout_s=120)
        history = await client.everything(reader, group["id"])
        stored = {message["client_msg_id"]: message for message in history}
        assert len(stored) == len(history), "a client_msg_id is stored twice"
        assert len(history) == clients * per_client
        for message in everything:
            kept = stored[message["client_msg_id"]]
            assert (kept["id"], kept["seq"], kept["text"]) == (message["id"], message["seq"], message["text"])
        seqs = [message["seq"] for message in history]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        for messages in acked:
            # One client sends one message at a time: each later acknowledgement has a higher seq.
            assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)
    finally:
        await client.close()


async def test_kafka_restart(stack: Fleet) -> None:
    await survive(stack, lambda: run_script("stack", "restart", "kafka"))


async def test_mariadb_restart(stack: Fleet) -> None:
    await survive(stack, lambda: run_script("stack", "restart", "mariadb"))


async def test_redis_killed_and_restarted(stack: Fleet) -> None:
    async def crash() -> None:
        await run_script("stack", "kill", "redis")
        await asyncio.sleep(1)
        await run_script("stack", "start", "redis")

    await survive(stack, crash)


async def test_persist_job_killed_and_restarted(stack: Fleet) -> None:
    async def crash() -> None:
        await stack.kill("job")
        await asyncio.sleep(1)
        await stack.restart("job")

    await survive(stack, crash)


async def test_chat_service_killed_and_restarted(stack: Fleet) -> None:
    async def crash() -> None:
        await stack.kill("chat")
        await asyncio.sleep(1)
        await stack.restart("chat")

    await survive(stack, crash)


async def test_chat_service_killed_with_a_large_batch_in_flight(stack: Fleet) -> None:
    # 64 writers sending at once: chat's pipeline holds most of them in one batch when it is killed.
    async def crash() -> None:
        await stack.kill("chat")
        await asyncio.sleep(1)
        await stack.restart("chat")

    await survive(stack, crash, clients=64, per_client=6)
