"""Scale-out on one machine: two bff instances, two job processes (persist + push), account and chat, each its own
process on MariaDB, Redis and Kafka. People connected to different instances talk live; a job process killed
mid-stream (SIGKILL) loses nothing: every acknowledged message reaches each connected device live or by catch-up
(``GET /v1/sync`` + history after a seq), and is stored exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.client import Client, Device, Person
from tests.e2e.conftest import fresh_database
from tests.e2e.fleet import ROOT, Fleet, port_env
from tidings.bench.system import free_port

LIVE_S = 30  # bound on a live delivery while nothing is failing (a fresh consumer group may still be joining)
SETTLE_S = 60  # bound on the deliveries after a crash: the dead member's partitions move after its session timeout


@dataclass
class Instance:
    http_url: str
    ws_url: str


@dataclass
class ScaleOut:
    fleet: Fleet
    bffs: list[Instance]


async def start_scale_out(tmp_path: Path, database_url: str) -> Fleet:
    """The fleet on free ports; returns it with ``bff`` and ``bff2``, ``job`` and ``job2`` running."""
    ports = {name: (free_port(), free_port()) for name in ("account", "chat", "bff", "bff2")}
    job_ports = (free_port(), free_port())
    env = {
        "TIDINGS_DATABASE__URL": database_url,
        **port_env("account", *ports["account"]),
        **port_env("chat", *ports["chat"]),
        **port_env("bff", *ports["bff"]),
        **port_env("job", job_ports[0]),
    }
    fleet = Fleet(ROOT / "configs" / "stack.yaml", tmp_path, env=env)
    try:
        # One after another: the first applies the migrations, the others find them applied.
        await fleet.start("account", ready_port=ports["account"][0])
        await fleet.start("chat", ready_port=ports["chat"][0])
        await fleet.start("job", ready_port=job_ports[0])
        await fleet.start("job2", ready_port=job_ports[1], args=["serve", "job"], env=port_env("job", job_ports[1]))
        await fleet.start("bff", ready_port=ports["bff"][0])
        http2, grpc2 = ports["bff2"]
        internal2 = free_port()
        second = {
            **port_env("bff", http2, grpc2, internal=internal2),
            "TIDINGS_REALTIME__ADVERTISE": f"127.0.0.1:{internal2}",
        }
        await fleet.start("bff2", ready_port=http2, args=["serve", "bff"], env=second)
    except BaseException:
        await fleet.close()
        raise
    return fleet


@pytest.fixture
async def scale_out(tmp_path: Path) -> AsyncIterator[ScaleOut]:
    async with fresh_database() as database_url:
        fleet = await start_scale_out(tmp_path, database_url)
        try:
            bffs = [Instance(f"http://127.0.0.1:{fleet.processes[name].ready_port}", "") for name in ("bff", "bff2")]
            for bff in bffs:
                bff.ws_url = bff.http_url.replace("http", "ws", 1) + "/v1/ws"
            yield ScaleOut(fleet, bffs)
        finally:
            await fleet.close()


async def send(client: Client, me: Person, conversation_id: str, text: str) -> dict[str, Any]:
    answer = await client.send(me, conversation_id, text)
    assert answer.status_code == 201, answer.text
    message: dict[str, Any] = answer.json()["message"]
    return message


async def test_people_on_different_instances_talk_live_and_a_killed_job_loses_nothing(scale_out: ScaleOut) -> None:
    one, two = Client(scale_out.bffs[0].http_url), Client(scale_out.bffs[1].http_url)
    devices: list[Device] = []
    try:
        alice, bob, carol = await one.register("alice"), await two.register("bob"), await one.register("carol")
        direct = (await one.direct(alice, bob))["id"]
        group = (await two.group(bob, "trio", [alice, carol]))["id"]
        # Alice has a device on each instance; Bob is on the second, Carol on the first.
        alice_one = Device(scale_out.bffs[0].ws_url, alice)
        alice_two = Device(scale_out.bffs[1].ws_url, alice)
        bob_two = Device(scale_out.bffs[1].ws_url, bob)
        carol_one = Device(scale_out.bffs[0].ws_url, carol)
        devices = [alice_one, alice_two, bob_two, carol_one]
        for device in devices:
            await device.connect()
        members = {alice_one: {direct, group}, alice_two: {direct, group}, bob_two: {direct, group}, carol_one: {group}}

        # Live across instances: Alice writes through the first, Bob answers through the second.
        hello = await send(one, alice, direct, "hello from instance one")
        assert await bob_two.wait_for({hello["id"]}, LIVE_S) == set()
        assert await alice_two.wait_for({hello["id"]}, LIVE_S) == set()  # the sender's other device
        reply = await send(two, bob, direct, "hello back from instance two")
        assert await alice_one.wait_for({reply["id"]}, LIVE_S) == set()
        shout = await send(two, bob, group, "to the group")
        assert await carol_one.wait_for({shout["id"]}, LIVE_S) == set()

        # A stream of messages from both sides and both instances; one job process dies in the middle of it.
        acked = [hello, reply, shout]
        senders = [(one, alice), (two, bob), (one, carol)]
        for n in range(90):
            if n == 30:
                await scale_out.fleet.kill("job")
            client, person = senders[n % 3]
            conversation = group if person is carol or n % 2 else direct
            acked.append(await send(client, person, conversation, f"message {n}"))

        # Persisted exactly once, in seq order, whatever came live.
        for conversation in (direct, group):
            mine = sorted((m for m in acked if m["conversation_id"] == conversation), key=lambda m: m["seq"])
            await one.wait_for_max_seq(alice, conversation, mine[-1]["seq"], timeout_s=120)
            history = await one.everything(alice, conversation)
            assert [m["id"] for m in history] == [m["id"] for m in mine]

        # Delivered at least once to every connected device: live, or by catch-up for what the crash held back.
        for device, conversations in members.items():
            due = {m["id"] for m in acked if m["conversation_id"] in conversations}
            await device.wait_for(due, SETTLE_S)
        owners = {alice_one: alice, alice_two: alice, bob_two: bob, carol_one: carol}
        for device, conversations in members.items():
            due = {m["id"] for m in acked if m["conversation_id"] in conversations}
            await one.catch_up(owners[device], device)
            assert due <= device.messages.keys()
            # Every message a device shows is one that was sent to it, and each once (kept by id).
            assert {m["conversation_id"] for m in device.messages.values()} <= conversations
    finally:
        for device in devices:
            await device.close()
        await one.close()
        await two.close()
