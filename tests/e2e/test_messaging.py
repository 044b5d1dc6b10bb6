"""The message path through the public API: nothing acknowledged is lost, nothing is stored twice, order holds; in
every shape, two-wide (two instances of every module) among them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.e2e.client import Client
from tests.e2e.fleet import Fleet

pytestmark = pytest.mark.parametrize("fleet", ["dev", "stack", "wide"], indirect=True)


async def test_concurrent_sends_and_retries_are_stored_once_in_seq_order(fleet: Fleet, client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    ids = [uuid.uuid4().hex for _ in range(30)]
    # Every message sent twice at once: the original and a racing retry with the same client_msg_id.
    answers = await asyncio.gather(
        *(client.send(alice, conv["id"], f"message {n}", client_msg_id=ids[n]) for n in range(30) for _ in range(2))
    )
    assert all(answer.status_code in (200, 201) for answer in answers), [a.text for a in answers]
    assert sorted(answer.status_code for answer in answers) == [200] * 30 + [201] * 30
    acked = {answer.json()["message"]["client_msg_id"]: answer.json()["message"] for answer in answers}
    pairs = [(answers[2 * n].json()["message"], answers[2 * n + 1].json()["message"]) for n in range(30)]
    assert all(first == second for first, second in pairs)
    assert len({message["seq"] for message in acked.values()}) == 30

    highest = max(message["seq"] for message in acked.values())
    await client.wait_for_max_seq(bob, conv["id"], highest)
    history = await client.everything(bob, conv["id"])
    assert [m["client_msg_id"] for m in history] == sorted(acked, key=lambda c: acked[c]["seq"])
    assert [m["seq"] for m in history] == sorted(m["seq"] for m in acked.values())
    assert {m["id"] for m in history} == {m["id"] for m in acked.values()}


async def test_sequential_sends_get_increasing_seq_and_paging_works_both_ways(fleet: Fleet, client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    seqs = []
    for n in range(12):
        answer = await client.send(alice if n % 2 else bob, conv["id"], f"turn {n}")
        assert answer.status_code == 201, answer.text
        seqs.append(answer.json()["message"]["seq"])
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 12
    assert seqs[0] >= 1
    await client.wait_for_max_seq(alice, conv["id"], seqs[-1])

    newest = await client.history(alice, conv["id"], limit=5)
    assert [m["seq"] for m in newest["messages"]] == seqs[-5:]
    assert newest["has_more"]
    before = await client.history(alice, conv["id"], before_seq=seqs[-5], limit=5)
    assert [m["seq"] for m in before["messages"]] == seqs[-10:-5]
    assert before["has_more"]
    oldest = await client.history(alice, conv["id"], before_seq=seqs[2], limit=5)
    assert [m["seq"] for m in oldest["messages"]] == seqs[:2]
    assert not oldest["has_more"]
    after = await client.history(alice, conv["id"], after_seq=seqs[8], limit=2)
    assert [m["seq"] for m in after["messages"]] == seqs[9:11]
    assert after["has_more"]


async def test_read_marks_unread_counts_and_recall(fleet: Fleet, client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    sent = [(await client.send(alice, conv["id"], f"m{n}")).json()["message"] for n in range(4)]
    await client.wait_for_max_seq(bob, conv["id"], sent[-1]["seq"])
    seen = await client.conversation(bob, conv["id"])
    assert (seen["read_seq"], seen["unread_count"]) == (0, seen["max_seq"])
    assert seen["last_message"]["id"] == sent[-1]["id"]

    read = await client.http.post(
        f"/v1/conversations/{conv['id']}/read", json={"seq": sent[1]["seq"]}, headers=bob.headers
    )
    assert read.status_code == 204
    marked = await client.conversation(bob, conv["id"])
    assert marked["read_seq"] == sent[1]["seq"]
    assert marked["unread_count"] == marked["max_seq"] - sent[1]["seq"]
    # Backwards is ignored; beyond the end is clamped to max_seq.
    await client.http.post(f"/v1/conversations/{conv['id']}/read", json={"seq": 0}, headers=bob.headers)
    assert (await client.conversation(bob, conv["id"]))["read_seq"] == sent[1]["seq"]
    await client.http.post(f"/v1/conversations/{conv['id']}/read", json={"seq": 10**12}, headers=bob.headers)
    done = await client.conversation(bob, conv["id"])
    assert (done["read_seq"], done["unread_count"]) == (done["max_seq"], 0)

    not_sender = await client.http.delete(
        f"/v1/conversations/{conv['id']}/messages/{sent[0]['id']}", headers=bob.headers
    )
    assert not_sender.status_code in (403, 404), not_sender.text
    recalled = await client.http.delete(
        f"/v1/conversations/{conv['id']}/messages/{sent[0]['id']}", headers=alice.headers
    )
    assert recalled.status_code == 204, recalled.text
    first = (await client.history(bob, conv["id"], after_seq=0, limit=1))["messages"][0]
    assert (first["id"], first["recalled"], first["text"]) == (sent[0]["id"], True, "")


async def test_groups_membership_and_strangers(fleet: Fleet, client: Client) -> None:
    alice, bob, carol, dave = [await client.register(name) for name in ("alice", "bob", "carol", "dave")]
    group = await client.group(alice, "trip", [bob])
    assert group["kind"] == "group"
    assert set(group["member_ids"]) == {alice.id, bob.id}
    added = await client.http.post(
        f"/v1/conversations/{group['id']}/members", json={"user_ids": [carol.id]}, headers=alice.headers
    )
    assert added.status_code == 200, added.text
    assert carol.id in added.json()["member_ids"]
    sent = await client.send(carol, group["id"], "hello all")
    assert sent.status_code == 201, sent.text
    await client.wait_for_max_seq(alice, group["id"], sent.json()["message"]["seq"])

    stranger = await client.http.get(f"/v1/conversations/{group['id']}", headers=dave.headers)
    assert stranger.status_code in (403, 404)
    assert stranger.json()["error"]["reason"] in ("CONVERSATION_NOT_FOUND", "NOT_A_MEMBER")
    assert (await client.send(dave, group["id"], "let me in")).status_code in (403, 404)

    listed = await client.http.get("/v1/conversations", headers=bob.headers)
    assert [c["id"] for c in listed.json()["conversations"]] == [group["id"]]
    synced = (await client.http.get("/v1/sync", headers=alice.headers)).json()
    assert synced["me"]["id"] == alice.id
    assert set(synced["presence"]) == {bob.id, carol.id}


async def test_message_text_rules(fleet: Fleet, client: Client) -> None:
    alice, bob = await client.register("alice"), await client.register("bob")
    conv = await client.direct(alice, bob)
    too_long = await client.send(alice, conv["id"], "x" * 4001)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["reason"] == "MESSAGE_TOO_LONG"
    assert too_long.json()["error"]["metadata"]["field"] == "text"
    empty = await client.send(alice, conv["id"], "")
    assert (empty.status_code, empty.json()["error"]["metadata"]["field"]) == (400, "text")
    for text in ("😀" * 4000, "   ", "<script>alert(1)</script>", "مرحبا"):
        answer = await client.send(alice, conv["id"], text)
        assert answer.status_code == 201, answer.text
        assert answer.json()["message"]["text"] == text


async def test_two_users_and_a_50_member_group_exchange_5000_messages(fleet: Fleet, client: Client) -> None:
    """The acceptance run of the message path: 5,000 sends from 50 concurrent senders, each retried once at once
    with the same client_msg_id every tenth time (and, as a client does, after a retryable 503); then history, unread
    counts and read marks must all agree."""
    members = [await client.register(f"member{n}") for n in range(50)]
    alice, bob = members[0], members[1]
    direct = await client.direct(alice, bob)
    group = await client.group(alice, "fifty", members[1:])
    per_sender = 100
    acked: dict[str, list[dict[str, Any]]] = {}

    async def sender(index: int) -> None:
        me = members[index]
        mine = acked.setdefault(me.id, [])
        for n in range(per_sender):
            conversation = direct if index < 2 and n % 2 else group
            client_msg_id = uuid.uuid4().hex
            tries = 2 if n % 10 == 0 else 1
            answers = await asyncio.gather(
                *(client.deliver(me, conversation["id"], f"{index}/{n}", client_msg_id) for _ in range(tries))
            )
            assert all(answer.status_code in (200, 201) for answer in answers), [a.text for a in answers]
            messages = [answer.json()["message"] for answer in answers]
            assert all(message == messages[0] for message in messages)
            mine.append(messages[0])

    async with asyncio.TaskGroup() as senders:
        for index in range(len(members)):
            senders.create_task(sender(index))

    every = [message for messages in acked.values() for message in messages]
    assert len(every) == 5000
    for conversation in (direct, group):
        sent_here = [m for m in every if m["conversation_id"] == conversation["id"]]
        highest = max(m["seq"] for m in sent_here)
        await client.wait_for_max_seq(alice, conversation["id"], highest, timeout_s=120)
        history = await client.everything(alice, conversation["id"])
        assert [m["id"] for m in history] == [m["id"] for m in sorted(sent_here, key=lambda m: m["seq"])]
        assert len({m["seq"] for m in history}) == len(history)
        state = await client.conversation(alice, conversation["id"])
        assert state["max_seq"] == history[-1]["seq"]
        assert state["last_message"]["id"] == history[-1]["id"]
    for messages in acked.values():
        # One sender, one send at a time: a later acknowledgement has a higher seq in the same conversation.
        for conversation_id in {m["conversation_id"] for m in messages}:
            seqs = [m["seq"] for m in messages if m["conversation_id"] == conversation_id]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == len(seqs)

    reader = members[7]
    middle = (await client.history(reader, group["id"], limit=1))["messages"][0]["seq"] // 2
    await client.http.post(f"/v1/conversations/{group['id']}/read", json={"seq": middle}, headers=reader.headers)
    seen = await client.conversation(reader, group["id"])
    assert seen["read_seq"] == middle
    assert seen["unread_count"] == seen["max_seq"] - middle
    listed = (await client.http.get("/v1/sync", headers=reader.headers)).json()["conversations"]
    assert [(c["id"], c["read_seq"], c["unread_count"]) for c in listed] == [
        (group["id"], middle, seen["max_seq"] - middle)
    ]
