"""Redis stopped or frozen under the chat service: sends still succeed, reads fall back to MariaDB, and once Redis
is back the cached conversation states (max seq, read seq) are right again and seqs keep their order.

Two chat instances, the account service, the persist job and the invalidate job run in this process on MariaDB and
Kafka (topics of this test), with a Redis server of this test alone: the stack's Redis is shared, so it is never
the one stopped here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.integration.redis_server import RedisServer
from tests.integration.test_chat_service import (
    Ack,
    Stack,
    check_acks_against_history,
    open_stack,
    send,
    wait_for_history,
)
from tidings.api.chat.v1 import chat_pb2
from tidings.job.biz.errors import TRANSIENT
from tidings.job.wire import invalidate_consumer
from tidings.pkg.bus.consumer import ConsumerOptions
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.conf import CacheConf

# How long the states may take to be right again once Redis is back: the delayed delete (0.3 s here), the
# invalidate job's retry backoff and a consumer's poll. Generous: it bounds a wait, it measures nothing.
SETTLE_S = 60


@pytest.fixture
async def stack(mysql_url: str, kafka_prefix: str, redis_server: RedisServer) -> AsyncIterator[Stack]:
    cache = CacheConf(url=redis_server.url, timeout_s=0.5, retry_after_s=0.5, invalidate_delay_s=0.3)
    # The Redis server is the test's alone: its keys need no namespace of their own.
    async with open_stack(mysql_url, cache, kafka_prefix, redis_prefix="chat") as stack:
        invalidator = await invalidate_consumer(
            stack.infra,
            ConsumerMetrics(CollectorRegistry()),
            topics=stack.topics,
            options=ConsumerOptions(workers=4, transient=TRANSIENT, backoff_max_s=0.5),
        )
        await invalidator.start()
        try:
            yield stack
        finally:
            await invalidator.stop()


async def states(stub: Any, user_id: int, conversation_ids: list[int]) -> dict[int, tuple[int, int]]:
    """``conversation -> (max_seq, read_seq)``, as a sync reads them (unread = the difference)."""
    request = chat_pb2.GetConversationStatesRequest(user_id=user_id, conversation_ids=conversation_ids)
    answer = await stub.GetConversationStates(request, timeout=10)
    return {state.conversation_id: (state.max_seq, state.read_seq) for state in answer.states}


async def settled(read: Callable[[], Coroutine[Any, Any, object]], expected: object) -> None:
    """Wait until ``read()`` gives ``expected`` (persisting and the delayed deletes are asynchronous)."""
    seen: object = None
    try:
        async with asyncio.timeout(SETTLE_S):
            # Polling the API on purpose: nothing announces that a cache has been repaired.
            while (seen := await read()) != expected:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"still {seen}, expected {expected}") from None


@pytest.mark.parametrize("outage", ["frozen", "stopped"])
async def test_sends_succeed_with_redis_down_and_unread_counts_are_right_after_it_returns(
    stack: Stack, redis_server: RedisServer, outage: str
) -> None:
    server = redis_server
    a, b = await stack.add_chat_node(), await stack.add_chat_node()
    await stack.start_persist()
    sender, reader, other = await stack.register(3)
    direct = (await a.stub.CreateDirect(chat_pb2.CreateDirectRequest(user_id=sender, peer_id=reader))).conversation
    group = (
        await a.stub.CreateGroup(chat_pb2.CreateGroupRequest(user_id=sender, title="g", member_ids=[reader, other]))
    ).conversation
    conversations = [direct.id, group.id]
    acks: list[Ack] = []

    async def send_round(nodes: list[Any], count: int) -> None:
        """One message at a time per conversation, alternating instances: each ack must top the ones before."""
        for n in range(count):
            for conversation_id in conversations:
                order = len(acks)
                client_msg_id = f"{conversation_id}-{order}"
                stub = nodes[n % len(nodes)].stub
                answer = await send(stub, conversation_id, sender, client_msg_id, f"m{order}")
                acks.append(Ack(conversation_id, sender, client_msg_id, answer.message.id, answer.message.seq, order))

    def expected(marks: dict[int, int]) -> dict[int, tuple[int, int]]:
        newest = {cid: max(ack.seq for ack in acks if ack.conversation_id == cid) for cid in conversations}
        return {cid: (newest[cid], marks.get(cid, 0)) for cid in conversations}

    async def mark(user_id: int, conversation_id: int, seq: int) -> None:
        request = chat_pb2.MarkReadRequest(user_id=user_id, conversation_id=conversation_id, seq=seq)
        await b.stub.MarkRead(request, timeout=10)

    # Before: the states are cached (a second read is served by Redis).
    await send_round([a, b], 10)
    await settled(lambda: states(a.stub, reader, conversations), expected({}))
    await mark(reader, group.id, acks[-1].seq)
    await settled(lambda: states(a.stub, reader, conversations), expected({group.id: acks[-1].seq}))
    reader_marks = {group.id: acks[-1].seq}

    if outage == "frozen":
        server.freeze()
    else:
        await server.stop()
    try:
        # Down: every send succeeds (through both instances), reads answer from the database, marks move.
        await send_round([a, b], 10)
        await settled(lambda: states(b.stub, reader, conversations), expected(reader_marks))
        # Once persisted: a mark is clamped to the stored max seq.
        await mark(reader, direct.id, acks[-2].seq)
        reader_marks[direct.id] = acks[-2].seq
        await settled(lambda: states(b.stub, reader, conversations), expected(reader_marks))
        await settled(lambda: states(a.stub, other, conversations), {group.id: expected({})[group.id]})
    finally:
        if outage == "frozen":
            server.thaw()
        else:
            await server.start()

    # Back: sends go on in order, and the states read through Redis are right again for every member.
    await send_round([b], 5)
    await settled(lambda: states(a.stub, reader, conversations), expected(reader_marks))
    await settled(lambda: states(b.stub, other, conversations), {group.id: expected({})[group.id]})
    await settled(lambda: states(b.stub, sender, conversations), expected({}))

    seqs = {cid: [ack.seq for ack in acks if ack.conversation_id == cid] for cid in conversations}
    for cid, handed in seqs.items():
        assert handed == sorted(set(handed)), f"conversation {cid}: seqs out of acknowledgement order or reused"
    histories = await wait_for_history(stack, {direct.id: sender, group.id: sender}, acks)
    check_acks_against_history(acks, histories)
