"""Message retention on MariaDB and the real OpenSearch: messages past their kind's age go with their search
documents, nothing newer than the cut-off does, and each conversation's history stays contiguous from its new first
seq, also when a message's clock is out of step."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.chat_repos import conversation
from tests.contracts.search import found
from tests.contracts.task_runs import held_lease
from tests.integration.conftest import OPENSEARCH_URL, unique
from tests.integration.test_search_opensearch import drop_namespace
from tidings.search.model import MessageDoc, version_at
from tidings.search.opensearch import OpenSearchIndex
from tidings.service.chat.biz.model import Kind, Member, Role
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.message import Message
from tidings.service.chat.tables import messages
from tidings.task.biz.retention import MessageRetention
from tidings.task.data.retention import NoWindows, SQLHistory

DAY_MS = 86_400_000
NOW = 1_800_000_000_000


@pytest.fixture
async def search() -> AsyncIterator[OpenSearchIndex]:
    namespace = unique("retention") + "_"
    index = OpenSearchIndex(OPENSEARCH_URL, namespace=namespace, replicas=0, refresh=True)
    await index.ensure()
    yield index
    await index.close()
    await drop_namespace(namespace)


async def seqs(engine: AsyncEngine, conversation_id: int) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            select(messages.c.seq).where(messages.c.conversation_id == conversation_id).order_by(messages.c.seq)
        )
        return list(rows)


async def test_old_messages_go_with_their_documents_and_history_stays_contiguous(
    mysql_engine: AsyncEngine, search: OpenSearchIndex
) -> None:
    repo, store = SQLConversationRepo(mysql_engine), SQLMessageRepo(mysql_engine)
    group, direct = conversation(Kind.GROUP, members=1), conversation(Kind.DIRECT, members=1)
    for chat in (group, direct):
        await repo.create(chat, [Member(chat.id, 1, Role.OWNER, 0, 0)])
    # Group: ten days old down to one, and seq 6 stamped late by a chat instance whose clock ran ahead.
    ages_days = {1: 10, 2: 9, 3: 8, 4: 7, 5: 6, 6: 1, 7: 5, 8: 2, 9: 1}
    sent = [
        Message(group.id * 100 + seq, group.id, seq, 1, f"g{seq}", f"harbour {seq}", NOW - days * DAY_MS)
        for seq, days in ages_days.items()
    ]
    sent += [
        Message(direct.id * 100 + seq, direct.id, seq, 1, f"d{seq}", f"harbour d{seq}", NOW - 10 * DAY_MS)
        for seq in (1, 2)
    ]
    await store.persist(sent)
    await search.index_messages(
        [
            MessageDoc(
                m.id, m.conversation_id, 1, "Ada", m.seq, m.created_at_ms, m.text, False, version_at(m.created_at_ms)
            )
            for m in sent
        ]
    )
    lease = await held_lease(mysql_engine, "retention")
    retention = MessageRetention(
        SQLHistory(mysql_engine, lease),
        search,
        NoWindows(),
        lease,
        lambda: NOW,
        keep_s={"group": 3 * 86_400},  # direct chats keep everything
        batch=2,
    )
    assert await retention.preview() == 6  # seqs 1-5 and 7 are older than three days
    assert await retention.run() == 5
    # The prefix up to the first message within the age: seq 7 waits behind seq 6 (contiguous, never a hole).
    assert await seqs(mysql_engine, group.id) == [6, 7, 8, 9]
    assert await seqs(mysql_engine, direct.id) == [1, 2]
    hits = await found(search, "harbour", (group.id, direct.id))
    assert sorted(hits) == sorted(m.id for m in sent if m.conversation_id == direct.id or m.seq >= 6)
    assert await lease.load_checkpoint() == "0"
    assert await retention.run() == 0  # nothing left to do
