"""Message and user search through the public API, on both shapes of the system (the embedded FTS5 index under
``tidings dev``, OpenSearch fed by the index job on the stack): CJK inside longer text, highlights as offsets, only
the caller's current conversations, recalls, paging, and bad input."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.client import Client, Person
from tests.e2e.fleet import Fleet


async def search(client: Client, me: Person, **params: Any) -> dict[str, Any]:
    answer = await client.http.get("/v1/search/messages", params=params, headers=me.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def until_found(client: Client, me: Person, query: str, count: int, timeout_s: float = 30) -> dict[str, Any]:
    """The search's answer once it holds ``count`` messages (the index follows the log within seconds)."""
    async with asyncio.timeout(timeout_s):
        while len((body := await search(client, me, query=query))["messages"]) != count:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return body


async def test_messages_are_found_in_the_callers_conversations_only(fleet: Fleet, client: Client) -> None:
    alice, bob, carol = await client.register("alice"), await client.register("bob"), await client.register("carol")
    group = await client.group(alice, "trip", [bob])
    texts = ["我们明天说你好世界吧 see you at the harbour", "東京でこんにちはと言った", "harbour closed today"]
    for text in texts:
        assert (await client.send(alice, group["id"], text)).status_code == 201

    found = await until_found(client, bob, "你好世界", 1)
    (hit,) = found["messages"]
    assert hit["text"] == texts[0]
    assert [hit["text"][span["start"] : span["end"]] for span in hit["highlights"]] == ["你好世界"]
    assert found["next_cursor"] is None
    assert [m["text"] for m in (await until_found(client, bob, "こんにちは", 1))["messages"]] == [texts[1]]

    # Newest first, a page at a time.
    both = await until_found(client, bob, "harbour", 2)
    first = await search(client, bob, query="harbour", limit=1)
    second = await search(client, bob, query="harbour", limit=1, cursor=first["next_cursor"])
    assert [m["id"] for m in first["messages"] + second["messages"]] == [m["id"] for m in both["messages"]]
    assert both["messages"][0]["text"] == texts[2]
    assert second["next_cursor"] is None

    # Not a member: nothing, and the conversation named is refused.
    assert (await search(client, carol, query="harbour"))["messages"] == []
    refused = await client.http.get(
        "/v1/search/messages", params={"query": "harbour", "conversation_id": group["id"]}, headers=carol.headers
    )
    assert refused.status_code in (403, 404), refused.text

    # A member who leaves stops seeing the conversation at once.
    removed = await client.http.delete(f"/v1/conversations/{group['id']}/members/{bob.id}", headers=alice.headers)
    assert removed.status_code == 200, removed.text
    assert (await search(client, bob, query="harbour"))["messages"] == []


async def test_a_recalled_message_leaves_the_results(fleet: Fleet, client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    sent = (await client.send(alice, conv["id"], "an embarrassing typo")).json()["message"]
    await until_found(client, bob, "embarrassing", 1)
    recalled = await client.http.delete(f"/v1/conversations/{conv['id']}/messages/{sent['id']}", headers=alice.headers)
    assert recalled.status_code == 204
    await until_found(client, bob, "embarrassing", 0)


async def test_bad_search_input_is_400_naming_the_field(fleet: Fleet, client: Client) -> None:
    alice = await client.register("alice")
    cases: list[tuple[dict[str, str | int], str]] = [
        ({"query": "   "}, "query"),
        ({"query": "x" * 257}, "query"),
        ({"query": "hi", "cursor": "not-a-cursor"}, "cursor"),
        ({"query": "hi", "limit": 51}, "limit"),
    ]
    for params, field in cases:
        answer = await client.http.get("/v1/search/messages", params=params, headers=alice.headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["metadata"]["field"] == field


async def test_people_are_found_by_display_name_prefix(fleet: Fleet, client: Client) -> None:
    alice = await client.register("alice")
    changed = await client.http.patch("/v1/me", json={"display_name": "Zhang 张三丰"}, headers=alice.headers)
    assert changed.status_code == 200, changed.text
    async with asyncio.timeout(30):
        while True:
            answer = await client.http.get("/v1/users", params={"query": "张三"}, headers=alice.headers)
            assert answer.status_code == 200, answer.text
            if [user["id"] for user in answer.json()["users"]] == [alice.id]:
                break
            await asyncio.sleep(0.2)
