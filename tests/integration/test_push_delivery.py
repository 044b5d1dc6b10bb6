"""The push job on Kafka and Redis with a real bff: a message sent over REST reaches the recipient's WebSocket and
the sender's other device; a read mark reaches the direct peer; a recall reaches everyone; an operator's removal
(through chat's gRPC API, as the admin module calls it) reaches the members as ``message.removed`` with its reason,
and a group an operator deleted is no one's any more. Modules run as processes on free ports and the test's own
database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.e2e.client import Client, Device, StreamDevice
from tests.e2e.fleet import ROOT, Fleet, port_env
from tidings.api.chat.v1 import chat_pb2, chat_pb2_grpc
from tidings.bench.system import free_port

WAIT_S = 30  # bound on one delivery (a fresh consumer group may still be joining)
OPERATOR = 4242  # an operator's id as the admin module passes it: no chat user, no member of anything


@dataclass
class System:
    client: Client
    ws_url: str
    # The bff's public gRPC address (the stream) and chat's (what the admin module calls).
    stream_address: str
    chat: chat_pb2_grpc.ChatServiceStub


@pytest.fixture
async def system(tmp_path: Path, mysql_url: str) -> AsyncIterator[System]:
    account, chat, bff, job = (
        (free_port(), free_port()),
        (free_port(), free_port()),
        (free_port(), free_port()),
        free_port(),
    )
    env = {
        "TIDINGS_DATABASE__URL": mysql_url,
        **port_env("account", *account),
        **port_env("chat", *chat),
        **port_env("bff", *bff),
        **port_env("job", job),
    }
    fleet = Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env=env)
    client = Client(f"http://127.0.0.1:{bff[0]}")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{chat[1]}")
    try:
        for name, port in (("account", account[0]), ("chat", chat[0]), ("job", job), ("bff", bff[0])):
            await fleet.start(name, ready_port=port)
        yield System(
            client, f"ws://127.0.0.1:{bff[0]}/v1/ws", f"127.0.0.1:{bff[1]}", chat_pb2_grpc.ChatServiceStub(channel)
        )
    finally:
        await channel.close()
        await client.close()
        await fleet.close()


async def test_a_rest_send_reaches_the_recipient_and_the_senders_other_device(system: System) -> None:
    client, ws_url = system.client, system.ws_url
    alice, bob = await client.register("alice"), await client.register("bob")
    conversation = (await client.direct(alice, bob))["id"]
    bob_phone, alice_laptop = Device(ws_url, bob), Device(ws_url, alice)
    try:
        await bob_phone.connect()
        await alice_laptop.connect()
        answer = await client.send(alice, conversation, "hi bob")
        assert answer.status_code == 201, answer.text
        sent = answer.json()["message"]
        assert await bob_phone.wait_for({sent["id"]}, WAIT_S) == set()
        assert await alice_laptop.wait_for({sent["id"]}, WAIT_S) == set()
        assert bob_phone.messages[sent["id"]] == sent

        await client.wait_for_max_seq(bob, conversation, sent["seq"])
        read = await client.http.post(
            f"/v1/conversations/{conversation}/read", json={"seq": sent["seq"]}, headers=bob.headers
        )
        assert read.status_code == 204, read.text
        mark = await alice_laptop.frame("conversation.read", WAIT_S)
        assert (mark["conversation_id"], mark["user_id"], mark["seq"]) == (conversation, bob.id, sent["seq"])

        recall = await client.http.delete(
            f"/v1/conversations/{conversation}/messages/{sent['id']}", headers=alice.headers
        )
        assert recall.status_code == 204, recall.text
        recalled = await bob_phone.frame("message.recalled", WAIT_S)
        assert (recalled["message_id"], recalled["seq"]) == (sent["id"], sent["seq"])
    finally:
        await bob_phone.close()
        await alice_laptop.close()


async def test_an_operators_removal_reaches_the_members_with_its_reason_and_a_deleted_group_is_gone(
    system: System,
) -> None:
    client, chat = system.client, system.chat
    alice, bob = await client.register("alice"), await client.register("bob")
    group = (await client.group(alice, "market", [bob]))["id"]
    bob_phone, bob_tablet = Device(system.ws_url, bob), StreamDevice(system.stream_address, bob)
    try:
        await bob_phone.connect()
        await bob_tablet.connect()
        answer = await client.send(alice, group, "cheap pills here")
        assert answer.status_code == 201, answer.text
        sent = answer.json()["message"]
        assert await bob_phone.wait_for({sent["id"]}, WAIT_S) == set()
        await client.wait_for_max_seq(bob, group, sent["seq"])

        with pytest.raises(grpc.aio.AioRpcError) as no_reason:
            await chat.RecallMessage(
                chat_pb2.RecallMessageRequest(
                    conversation_id=int(group), message_id=int(sent["id"]), user_id=OPERATOR, by_operator=True
                )
            )
        assert no_reason.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "moderation_reason" in str(no_reason.value.details())

        await chat.RecallMessage(
            chat_pb2.RecallMessageRequest(
                conversation_id=int(group),
                message_id=int(sent["id"]),
                user_id=OPERATOR,
                by_operator=True,
                moderation_reason="spam <b>links</b>",
            )
        )
        expected = {
            "type": "message.removed",
            "conversation_id": group,
            "message_id": sent["id"],
            "seq": sent["seq"],
            "reason": "spam <b>links</b>",
        }
        assert await bob_phone.frame("message.removed", WAIT_S) == expected
        assert await bob_tablet.frame("message.removed", WAIT_S) == expected
        assert not [frame for frame in bob_phone.frames if frame["type"] == "message.recalled"]
        (stored,) = (await client.history(bob, group, after_seq=0))["messages"]
        assert (stored["id"], stored["recalled"], stored["text"]) == (sent["id"], True, "")
    finally:
        await bob_phone.close()
        await bob_tablet.close()

    seen = await chat.InspectConversation(chat_pb2.InspectConversationRequest(conversation_id=int(group)))
    assert [(m.user_id, m.role) for m in seen.members] == [(int(alice.id), "owner"), (int(bob.id), "member")]
    assert (seen.message_count, seen.recalled_count) == (1, 1)
    history = await chat.ListMessages(
        chat_pb2.ListMessagesRequest(conversation_id=int(group), user_id=OPERATOR, after_seq=0, by_operator=True)
    )
    assert [(m.id, m.recalled) for m in history.messages] == [(int(sent["id"]), True)]

    assert (await client.conversation(bob, group))["id"] == group  # cached for bob now: deletion must clear it
    deleted = await chat.DeleteConversation(
        chat_pb2.DeleteConversationRequest(conversation_id=int(group), operator_id=OPERATOR, reason="spam ring")
    )
    assert (deleted.conversation.title, sorted(deleted.conversation.member_ids)) == (
        "market",
        sorted([int(alice.id), int(bob.id)]),
    )
    for person in (alice, bob):
        gone = await client.http.get(f"/v1/conversations/{group}", headers=person.headers)
        assert gone.status_code == 404, gone.text
        listed = await client.http.get("/v1/conversations", headers=person.headers)
        assert group not in [c["id"] for c in listed.json()["conversations"]]
    refused = await client.send(alice, group, "still here?")
    assert refused.status_code == 404, refused.text
    with pytest.raises(grpc.aio.AioRpcError) as inspected:
        await chat.InspectConversation(chat_pb2.InspectConversationRequest(conversation_id=int(group)))
    assert inspected.value.code() is grpc.StatusCode.NOT_FOUND
