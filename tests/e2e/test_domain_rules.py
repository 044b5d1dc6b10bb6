"""Rules of the domain through the public API, on both shapes of the system: bad text is a 400 (never a 500),
a client_msg_id names one message, and blocks keep people out of each other's groups."""

from __future__ import annotations

import asyncio

from tests.e2e.client import Client
from tests.e2e.fleet import Fleet


async def test_a_lone_surrogate_in_message_text_is_400_naming_the_field(fleet: Fleet, client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    answer = await client.http.post(
        f"/v1/conversations/{conv['id']}/messages",
        content=b'{"client_msg_id": "s-1", "text": "broken \\ud800 text"}',
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["reason"], error["metadata"]["field"]) == ("INVALID_ARGUMENT", "text")


async def test_a_client_msg_id_reused_in_another_conversation_is_409(fleet: Fleet, client: Client) -> None:
    alice, bob, carol = await client.register("alice"), await client.register("bob"), await client.register("carol")
    first, second = await client.direct(alice, bob), await client.direct(alice, carol)
    sent = await client.send(alice, first["id"], "to bob", client_msg_id="reuse-1")
    assert sent.status_code == 201, sent.text
    reused = await client.send(alice, second["id"], "to carol", client_msg_id="reuse-1")
    assert reused.status_code == 409, reused.text
    error = reused.json()["error"]
    assert (error["reason"], error["metadata"]["conversation_id"]) == ("CLIENT_MSG_ID_REUSED", first["id"])
    retry = await client.send(alice, first["id"], "to bob", client_msg_id="reuse-1")
    assert (retry.status_code, retry.json()["message"]["id"]) == (200, sent.json()["message"]["id"])


async def test_nobody_puts_someone_who_blocked_them_into_a_group(fleet: Fleet, client: Client) -> None:
    alice, bob, carol = await client.register("alice"), await client.register("bob"), await client.register("carol")
    blocked = await client.http.put(f"/v1/users/{alice.id}/block", headers=bob.headers)
    assert blocked.status_code == 204, blocked.text
    refused = await client.http.post(
        "/v1/conversations",
        json={"kind": "group", "title": "team", "member_ids": [bob.id, carol.id]},
        headers=alice.headers,
    )
    assert refused.status_code == 403, refused.text
    assert (refused.json()["error"]["reason"], refused.json()["error"]["metadata"]["user_ids"]) == (
        "USER_BLOCKED",
        bob.id,
    )
    group = await client.group(alice, "team", [carol])
    added = await client.http.post(
        f"/v1/conversations/{group['id']}/members", json={"user_ids": [bob.id]}, headers=alice.headers
    )
    assert (added.status_code, added.json()["error"]["reason"]) == (403, "USER_BLOCKED")
    assert (await client.http.delete(f"/v1/users/{alice.id}/block", headers=bob.headers)).status_code == 204
    # Blocks are cached by chat for a few seconds; the add goes through once the unblock is seen.
    for _ in range(40):
        added = await client.http.post(
            f"/v1/conversations/{group['id']}/members", json={"user_ids": [bob.id]}, headers=alice.headers
        )
        if added.status_code == 200:
            break
        await asyncio.sleep(0.25)
    assert added.status_code == 200, added.text
