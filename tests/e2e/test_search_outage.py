"""Search down, everything else up: the stack shape (account, chat, job and bff on MariaDB, Redis and Kafka) on an
OpenSearch node of this test's own, which it freezes, then stops, and starts again.

Meanwhile sends are acknowledged and stored, and message and user search answer 503 SEARCH_UNAVAILABLE, promptly
(within the search timeout, not the request's deadline, and never a 500); so does the back office's search, while
its look-ups by id answer as ever. When the node is back, the index job,
which kept retrying, catches up from Kafka: every message sent during the outage becomes searchable, and no
Tidings process was restarted for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.client import Client, Person
from tests.e2e.conftest import fresh_database, stack_fleet
from tests.e2e.fleet import Fleet
from tests.e2e.opensearch_node import OpenSearchNode
from tests.e2e.operators import ADMIN_URL, create_operator, operator_headers

# Short, so a frozen node costs the test little; the requests' deadline (10 s) stays well above it.
SEARCH_TIMEOUT_S = 2
# Long enough for any answer the search timeout bounds (the adapter gives up by twice the timeout at the latest),
# short of the request's deadline: an answer slower than this waited for something the timeout should have cut.
PROMPT_S = 4 * SEARCH_TIMEOUT_S


@pytest.fixture
async def fleet(tmp_path: Path, opensearch_node: OpenSearchNode) -> AsyncIterator[Fleet]:
    async with fresh_database() as database_url:
        env = {"TIDINGS_SEARCH__URL": opensearch_node.url, "TIDINGS_SEARCH__TIMEOUT_S": str(SEARCH_TIMEOUT_S)}
        fleet = await stack_fleet(tmp_path, database_url, env)
        try:
            await fleet.start("admin")
            await create_operator(fleet, "vic", "viewer")
            yield fleet
        finally:
            await fleet.close()


async def found(client: Client, me: Person, query: str) -> list[str]:
    answer = await client.http.get("/v1/search/messages", params={"query": query}, headers=me.headers)
    assert answer.status_code == 200, answer.text
    return [message["text"] for message in answer.json()["messages"]]


async def until_found(client: Client, me: Person, query: str, count: int, timeout_s: float = 60) -> list[str]:
    """The texts found once there are ``count`` (the index job retries with a backoff of up to 5 s)."""
    async with asyncio.timeout(timeout_s):
        while len(texts := await found(client, me, query)) != count:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return texts


async def assert_search_unavailable(client: Client, me: Person) -> None:
    """Message and user search both answer 503 SEARCH_UNAVAILABLE, each within ``PROMPT_S``."""
    for path, query in (("/v1/search/messages", "lighthouse"), ("/v1/users", me.username)):
        answer = await client.http.get(path, params={"query": query}, headers=me.headers, timeout=PROMPT_S)
        assert answer.status_code == 503, answer.text
        error: dict[str, Any] = answer.json()["error"]
        assert error["reason"] == "SEARCH_UNAVAILABLE", error


async def assert_back_office_looks_up_by_id(person: Person, conversation_id: str) -> None:
    """The back office's search answers 503 SEARCH_UNAVAILABLE; its look-ups by id answer as ever."""
    async with httpx.AsyncClient(base_url=ADMIN_URL, timeout=PROMPT_S) as admin:
        viewer = await operator_headers(admin, "vic")
        answer = await admin.get("/admin/v1/messages/search", params={"query": "lighthouse"}, headers=viewer)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["reason"] == "SEARCH_UNAVAILABLE"
        user = await admin.get(f"/admin/v1/users/{person.id}", headers=viewer)
        assert user.status_code == 200, user.text
        assert [c["id"] for c in user.json()["conversations"]] == [conversation_id]
        found = await admin.get(f"/admin/v1/conversations/{conversation_id}", headers=viewer)
        assert found.status_code == 200, found.text
        history = await admin.get(f"/admin/v1/conversations/{conversation_id}/messages", headers=viewer)
        assert history.status_code == 200, history.text


async def history(client: Client, me: Person, conversation_id: str) -> list[str]:
    answer = await client.http.get(f"/v1/conversations/{conversation_id}/messages", headers=me.headers)
    assert answer.status_code == 200, answer.text
    return [message["text"] for message in answer.json()["messages"]]


async def send_all(client: Client, me: Person, conversation_id: str, texts: list[str]) -> None:
    for text in texts:
        sent = await client.send(me, conversation_id, text)
        assert sent.status_code == 201, sent.text


async def test_search_outage_answers_503_and_the_index_catches_up_from_kafka(
    fleet: Fleet, opensearch_node: OpenSearchNode, client: Client
) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conversation = (await client.direct(alice, bob))["id"]
    await send_all(client, alice, conversation, ["lighthouse before the outage"])
    assert await until_found(client, bob, "lighthouse", 1) == ["lighthouse before the outage"]

    # Frozen: connections are taken and never answered; the search timeout, not the request's deadline, ends them.
    opensearch_node.freeze()
    frozen = [f"lighthouse while frozen {n}" for n in range(3)]
    try:
        await send_all(client, alice, conversation, frozen)
        await assert_search_unavailable(client, bob)
    finally:
        opensearch_node.thaw()

    # Stopped: connections are refused.
    await opensearch_node.stop()
    stopped = [f"lighthouse while stopped {n}" for n in range(3)]
    await send_all(client, alice, conversation, stopped)
    await assert_search_unavailable(client, bob)
    await assert_back_office_looks_up_by_id(alice, conversation)
    # Everything else works: the persist job stores them, and they are in the history.
    async with asyncio.timeout(30):
        while not set(stopped) <= set(await history(client, bob, conversation)):  # noqa: ASYNC110
            await asyncio.sleep(0.2)

    # Back: the index job, retrying all along, writes what it read from Kafka meanwhile; nothing was restarted.
    await opensearch_node.start()
    texts = await until_found(client, bob, "lighthouse", 7)
    assert texts == [*reversed(stopped), *reversed(frozen), "lighthouse before the outage"]
    # User search answers again too.
    users = await client.http.get("/v1/users", params={"query": alice.username}, headers=bob.headers)
    assert users.status_code == 200, users.text
    assert [user["id"] for user in users.json()["users"]] == [alice.id]
    for name, process in fleet.processes.items():
        assert process.restarts == 0, name
        assert process.handle is not None, name
        assert process.handle.returncode is None, f"{name} exited:\n{fleet.tail(name)}"
