"""The chat service end to end on the real stack: its gRPC API (two instances) on MariaDB, Redis and Kafka, the
real account service, and the persist job as an ``OrderedConsumer`` writing history.

What a user relies on: every acknowledged message appears in history exactly once, seqs strictly increase per
conversation (in acknowledgement order per sender), retries answer the original message, and neither a persist
consumer replaced mid-stream nor a Redis restart loses, doubles or reuses anything.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import func, select

from tests.integration.conftest import KAFKA_BOOTSTRAP, REDIS_URL
from tests.scripts import run_script
from tidings.api.account.v1 import account_pb2, account_pb2_grpc
from tidings.api.chat.v1 import chat_pb2, chat_pb2_grpc
from tidings.bench.system import free_port
from tidings.bootstrap import Infra
from tidings.conf import AccountConf, AuthConf, Modules, Settings
from tidings.job.biz.errors import TRANSIENT
from tidings.job.data.telemetry import PersistTelemetry
from tidings.job.wire import persist_consumer
from tidings.pkg import errors
from tidings.pkg.app import Module
from tidings.pkg.bus import events
from tidings.pkg.bus.consumer import ConsumerOptions, OrderedConsumer
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.conf import BusConf, CacheConf, DatabaseConf, Listen, SearchConf
from tidings.pkg.middleware.grpc import client_interceptors, server_interceptors
from tidings.service.account import wire as account_wire
from tidings.service.chat import wire as chat_wire
from tidings.service.chat.tables import messages

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ChatNode:
    """One chat instance: its own process-like Infra (id lease, pools, producer) and gRPC server."""

    infra: Infra
    server: Any
    channel: grpc.aio.Channel
    stub: Any


@dataclass
class Stack:
    settings: Settings
    topics: events.Topics
    redis_prefix: str
    infra: Infra
    account_module: Module
    account: Any
    nodes: list[ChatNode] = field(default_factory=list)
    consumer: OrderedConsumer | None = None

    async def add_chat_node(self) -> ChatNode:
        infra = Infra(self.settings)
        idgen = await infra.idgen()
        await idgen.start()
        servicer = await chat_wire.build(
            infra, registry=CollectorRegistry(), topics=self.topics, redis_prefix=self.redis_prefix
        )
        server = grpc.aio.server(interceptors=server_interceptors(request_timeout_s=10))
        chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=client_interceptors())
        node = ChatNode(infra, server, channel, chat_pb2_grpc.ChatServiceStub(channel))
        self.nodes.append(node)
        return node

    async def start_persist(self) -> OrderedConsumer:
        registry = CollectorRegistry()
        consumer = await persist_consumer(
            self.infra,
            ConsumerMetrics(registry),
            PersistTelemetry(registry),
            topics=self.topics,
            redis_prefix=self.redis_prefix,
            options=ConsumerOptions(transient=TRANSIENT, commit_interval_s=0.2, backoff_max_s=0.5),
        )
        await consumer.start()
        self.consumer = consumer
        return consumer

    async def stop_persist(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def register(self, count: int) -> list[int]:
        async def one(n: int) -> int:
            request = account_pb2.RegisterRequest(username=f"u{uuid.uuid4().hex[:12]}", password="password-" + str(n))
            return int((await self.account.Register(request, timeout=30)).grant.user.id)

        return list(await asyncio.gather(*(one(n) for n in range(count))))

    async def history(self, user_id: int, conversation_id: int) -> list[Any]:
        """The whole history, page by page (200 at a time), as a client syncs it."""
        found: list[Any] = []
        after = 0
        stub = self.nodes[0].stub
        while True:
            request = chat_pb2.ListMessagesRequest(
                user_id=user_id, conversation_id=conversation_id, after_seq=after, limit=200
            )
            page = await stub.ListMessages(request, timeout=10)
            found += page.messages
            if not page.has_more:
                return found
            after = page.messages[-1].seq

    async def stored_rows(self) -> int:
        async with (await self.infra.engine()).connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(messages)) or 0)


@pytest.fixture
async def stack(mysql_url: str, kafka_prefix: str, redis_prefix: str) -> AsyncIterator[Stack]:
    async with open_stack(mysql_url, CacheConf(url=REDIS_URL, timeout_s=2), kafka_prefix, redis_prefix) as stack:
        yield stack


@asynccontextmanager
async def open_stack(mysql_url: str, cache: CacheConf, topic_prefix: str, redis_prefix: str) -> AsyncIterator[Stack]:
    """Account in-process on its gRPC port, on the test's topic and key namespaces (``kafka_prefix``,
    ``redis_prefix``: their fixtures delete them afterwards); chat nodes and the persist job are added by the test."""
    account_port = free_port()
    settings = Settings(
        database=DatabaseConf(url=mysql_url, pool_size=20),
        cache=cache,
        # Account's own topics in the test's namespace too.
        bus=BusConf(kind="kafka", bootstrap_servers=KAFKA_BOOTSTRAP, namespace=f"{topic_prefix}."),
        # Searches are not what this suite tests: the embedded index in a file of its own.
        search=SearchConf(url=str(Path(tempfile.mkdtemp(prefix="tidings-search-")) / "search.db")),
        modules=Modules(account=AccountConf(http=Listen(port=free_port()), grpc=Listen(port=account_port))),
        auth=AuthConf(jwt_secret=SecretStr("integration-test-secret-of-32-characters!")),
    )
    infra = Infra(settings)
    idgen = await infra.idgen()
    await idgen.start()
    account_module = await account_wire.wire(infra)
    await account_module.servers[0].start()  # its gRPC server; the ops HTTP port is not needed here
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{account_port}", interceptors=client_interceptors())
    stack = Stack(
        settings,
        events.Topics(f"{topic_prefix}."),
        redis_prefix,
        infra,
        account_module,
        account_pb2_grpc.AccountServiceStub(channel),
    )
    try:
        yield stack
    finally:
        await stack.stop_persist()
        for node in stack.nodes:
            await node.channel.close()
            await node.server.stop(grace=1)
            for resource in node.infra.resources():
                await resource.stop()
            await node.infra.close()
        await channel.close()
        await account_module.servers[0].stop()
        await idgen.stop()
        await infra.close()


@dataclass
class Ack:
    conversation_id: int
    sender_id: int
    client_msg_id: str
    message_id: int
    seq: int
    order: int  # the sender's own sequence number of this send (in the conversation)


async def send(stub: Any, conversation_id: int, sender_id: int, client_msg_id: str, text: str) -> Any:
    request = chat_pb2.SendMessageRequest(
        conversation_id=conversation_id, sender_id=sender_id, client_msg_id=client_msg_id, text=text
    )
    return await stub.SendMessage(request, timeout=15)


def check_acks_against_history(acks: list[Ack], histories: dict[int, list[Any]]) -> None:
    """Every acknowledged message exactly once in history, seqs strictly increasing, ack order per sender."""
    for conversation_id, history in histories.items():
        seqs = [message.seq for message in history]
        assert seqs == sorted(set(seqs)), f"conversation {conversation_id}: seqs not strictly increasing"
        ids = [message.id for message in history]
        assert len(ids) == len(set(ids)), f"conversation {conversation_id}: a message stored twice"
        stored = {message.id: message for message in history}
        mine = [ack for ack in acks if ack.conversation_id == conversation_id]
        assert {ack.message_id for ack in mine} == set(stored), f"conversation {conversation_id}: lost or extra"
        for ack in mine:
            message = stored[ack.message_id]
            assert (message.seq, message.sender_id, message.client_msg_id) == (
                ack.seq,
                ack.sender_id,
                ack.client_msg_id,
            )
        per_sender: dict[int, list[Ack]] = defaultdict(list)
        for ack in sorted(mine, key=lambda a: a.order):
            per_sender[ack.sender_id].append(ack)
        for sender, sent in per_sender.items():
            assert [a.seq for a in sent] == sorted(a.seq for a in sent), f"sender {sender}: ack order != seq order"


async def wait_for_history(stack: Stack, reader: dict[int, int], acks: list[Ack]) -> dict[int, list[Any]]:
    expected = defaultdict(set)
    for ack in acks:
        expected[ack.conversation_id].add(ack.message_id)
    histories: dict[int, list[Any]] = {}

    async def complete() -> bool:
        for conversation_id, user in reader.items():
            histories[conversation_id] = await stack.history(user, conversation_id)
            if not expected[conversation_id] <= {m.id for m in histories[conversation_id]}:
                return False
        return True

    async with asyncio.timeout(90):
        # Polling the public API on purpose: persisting is asynchronous and announces nothing to wait on.
        while not await complete():  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return histories


async def test_concurrent_sends_through_two_instances_are_stored_once_in_seq_order(stack: Stack) -> None:
    a, b = await stack.add_chat_node(), await stack.add_chat_node()
    await stack.start_persist()
    users = await stack.register(8)
    stub = a.stub
    direct = (await stub.CreateDirect(chat_pb2.CreateDirectRequest(user_id=users[0], peer_id=users[1]))).conversation
    groups = [
        (
            await stub.CreateGroup(chat_pb2.CreateGroupRequest(user_id=users[0], title=f"g{n}", member_ids=users[1:]))
        ).conversation
        for n in range(3)
    ]
    members = {direct.id: users[:2], **{g.id: users for g in groups}}
    acks: list[Ack] = []
    retried: list[tuple[Ack, Any]] = []

    async def sender_run(conversation_id: int, sender: int, count: int) -> None:
        for n in range(count):
            client_msg_id = f"{sender}-{conversation_id}-{n}"
            node = random.choice([a, b])
            if n % 7 == 3:
                # A client retrying while its first attempt is still in flight, through either instance.
                results = await asyncio.gather(
                    send(a.stub, conversation_id, sender, client_msg_id, f"m{n}"),
                    send(b.stub, conversation_id, sender, client_msg_id, f"m{n}"),
                )
                assert len({(r.message.id, r.message.seq) for r in results}) == 1
                assert sum(r.duplicate for r in results) == 1
                answer = results[0]
            else:
                answer = await send(node.stub, conversation_id, sender, client_msg_id, f"m{n}")
                assert not answer.duplicate
            ack = Ack(conversation_id, sender, client_msg_id, answer.message.id, answer.message.seq, n)
            acks.append(ack)
            if n % 5 == 0:
                retried.append((ack, node))

    await asyncio.gather(*(sender_run(cid, sender, 25) for cid, people in members.items() for sender in people[:4]))
    # A retry long after the original answers the original, through any instance.
    for ack, _ in retried:
        again = await send(b.stub, ack.conversation_id, ack.sender_id, ack.client_msg_id, "changed text")
        assert again.duplicate
        assert (again.message.id, again.message.seq) == (ack.message_id, ack.seq)
    histories = await wait_for_history(stack, {cid: people[0] for cid, people in members.items()}, acks)
    check_acks_against_history(acks, histories)
    assert await stack.stored_rows() == len(acks)
    # max_seq is the newest stored seq, and unread counts agree with history and read marks.
    reader = users[1]
    for cid in members:
        history = histories[cid]
        await stub.MarkRead(chat_pb2.MarkReadRequest(user_id=reader, conversation_id=cid, seq=history[10].seq))
        view = await b.stub.GetConversation(chat_pb2.GetConversationRequest(user_id=reader, conversation_id=cid))
        conversation = view.conversation
        assert conversation.max_seq == history[-1].seq
        assert conversation.read_seq == history[10].seq
        assert conversation.unread_count == history[-1].seq - history[10].seq
        assert conversation.last_message.id == history[-1].id
    states = await a.stub.GetConversationStates(chat_pb2.GetConversationStatesRequest(user_id=reader))
    assert {s.conversation_id: s.max_seq for s in states.states} == {cid: histories[cid][-1].seq for cid in members}


async def test_replacing_the_persist_consumer_mid_stream_loses_and_doubles_nothing(stack: Stack) -> None:
    node = await stack.add_chat_node()
    await stack.start_persist()
    users = await stack.register(3)
    group = (
        await node.stub.CreateGroup(chat_pb2.CreateGroupRequest(user_id=users[0], title="g", member_ids=users[1:]))
    ).conversation
    acks: list[Ack] = []
    halfway = asyncio.Event()

    async def sender_run(sender: int, count: int) -> None:
        for n in range(count):
            client_msg_id = f"{sender}-{n}"
            answer = await send(node.stub, group.id, sender, client_msg_id, f"m{n}")
            acks.append(Ack(group.id, sender, client_msg_id, answer.message.id, answer.message.seq, n))
            if len(acks) >= 150:
                halfway.set()

    sending = asyncio.gather(*(sender_run(sender, 100) for sender in users))
    await halfway.wait()
    await stack.stop_persist()  # mid-stream: whatever it had not committed comes again to the next one
    await stack.start_persist()
    await sending
    histories = await wait_for_history(stack, {group.id: users[0]}, acks)
    check_acks_against_history(acks, histories)
    assert await stack.stored_rows() == len(acks) == 300


async def test_a_redis_restart_mid_stream_never_reuses_a_seq(stack: Stack) -> None:
    node = await stack.add_chat_node()
    await stack.start_persist()
    users = await stack.register(3)
    group = (
        await node.stub.CreateGroup(chat_pb2.CreateGroupRequest(user_id=users[0], title="g", member_ids=users[1:]))
    ).conversation
    acks: list[Ack] = []
    refused: list[str] = []
    restarted = asyncio.Event()
    started = asyncio.Event()

    async def sender_run(sender: int) -> None:
        n = 0
        # Keep sending until well after Redis is back, so both sides of the restart are exercised.
        while not restarted.is_set() or n < 60:
            client_msg_id = f"{sender}-{n}"
            try:
                answer = await send(node.stub, group.id, sender, client_msg_id, f"m{n}")
            except errors.TidingsError as failed:
                # The one acceptable failure (checked below): unavailable, with a message saying to retry.
                refused.append(f"{failed.reason}: {failed.message}")
                await asyncio.sleep(0.05)
                continue  # the same client_msg_id again: a retry, as a client would
            acks.append(Ack(group.id, sender, client_msg_id, answer.message.id, answer.message.seq, n))
            if n == 20:
                started.set()
            n += 1

    async def restart_redis() -> None:
        await started.wait()
        await run_script("stack", "restart", "redis", timeout_s=120)
        restarted.set()

    await asyncio.gather(restart_redis(), *(sender_run(sender) for sender in users))
    seqs = [ack.seq for ack in acks]
    assert len(seqs) == len(set(seqs)), "a seq was handed out twice"
    assert all(text.startswith("UNAVAILABLE: ") and "retry" in text for text in refused), refused
    histories = await wait_for_history(stack, {group.id: users[0]}, acks)
    check_acks_against_history(acks, histories)


async def test_errors_reach_the_caller_with_their_reasons(stack: Stack) -> None:
    node = await stack.add_chat_node()
    users = await stack.register(3)
    stub = node.stub
    group = (
        await stub.CreateGroup(chat_pb2.CreateGroupRequest(user_id=users[0], title="g", member_ids=users[1:2]))
    ).conversation
    cases = [
        (send(stub, group.id, users[2], "x", "hi"), "CONVERSATION_NOT_FOUND"),
        (send(stub, group.id, users[0], "x", "x" * 4001), "MESSAGE_TOO_LONG"),
        (send(stub, group.id, users[0], "x", ""), "INVALID_ARGUMENT"),
        (stub.CreateDirect(chat_pb2.CreateDirectRequest(user_id=users[0], peer_id=987654321)), "USER_NOT_FOUND"),
        (
            stub.RemoveMember(
                chat_pb2.RemoveMemberRequest(user_id=users[1], conversation_id=group.id, member_id=users[0])
            ),
            "NOT_GROUP_OWNER",
        ),
    ]
    for call, reason in cases:
        with pytest.raises(errors.TidingsError) as failed:
            await call
        assert failed.value.reason == reason
    await stack.account.BlockUser(account_pb2.BlockUserRequest(user_id=users[1], blocked_user_id=users[2]))
    with pytest.raises(errors.TidingsError) as blocked:
        await stub.CreateDirect(chat_pb2.CreateDirectRequest(user_id=users[2], peer_id=users[1]))
    assert blocked.value.reason == "USER_BLOCKED"
