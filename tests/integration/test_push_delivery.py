"""The push job on Kafka and Redis with a real bff: a message sent over REST reaches the recipient's WebSocket and
the sender's other device; a read mark reaches the direct peer; a recall reaches everyone. Modules run as processes
on free ports and the test's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.client import Client, Device
from tests.e2e.fleet import ROOT, Fleet, free_port, port_env

WAIT_S = 30  # bound on one delivery (a fresh consumer group may still be joining)


@pytest.fixture
async def system(tmp_path: Path, mysql_url: str) -> AsyncIterator[tuple[Client, str]]:
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
    try:
        for name, port in (("account", account[0]), ("chat", chat[0]), ("job", job), ("bff", bff[0])):
            await fleet.start(name, ready_port=port)
        yield client, f"ws://127.0.0.1:{bff[0]}/v1/ws"
    finally:
        await client.close()
        await fleet.close()


async def test_a_rest_send_reaches_the_recipient_and_the_senders_other_device(system: tuple[Client, str]) -> None:
    client, ws_url = system
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
