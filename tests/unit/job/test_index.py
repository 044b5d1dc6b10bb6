"""The index job's handler and use case on the embedded search index: sends indexed with their sender's name,
recalls and replays in any order, renames, and records that cannot be indexed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import TypeVar

import pytest
from google.protobuf.message import Message as ProtoMessage

from tidings.api.account.v1 import account_pb2
from tidings.api.account.v1 import events_pb2 as account_events
from tidings.api.chat.v1 import events_pb2 as chat_events
from tidings.job.biz.errors import InvalidEvent
from tidings.job.biz.index import Indexer
from tidings.job.service.index import IndexHandler
from tidings.pkg.bus import Record, events
from tidings.pkg.bus.consumer import UnknownEventVersion
from tidings.pkg.pbtime import timestamp
from tidings.search.fts5 import FTS5Index
from tidings.search.model import MessageQuery
from tidings.service.account import topics as account_topics
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.message import Message
from tidings.service.chat.store.records import message_to_pb

T0 = 1_800_000_000_000
TOPICS = events.Topics("t.")


class Names:
    def __init__(self) -> None:
        self.by_id = {7: "Ada"}
        self.asked: list[set[int]] = []

    async def names(self, user_ids: Collection[int]) -> dict[int, str]:
        self.asked.append(set(user_ids))
        return {user_id: self.by_id[user_id] for user_id in user_ids if user_id in self.by_id}


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[FTS5Index]:
    index = FTS5Index(str(tmp_path / "search.db"))
    await index.ensure()
    yield index
    await index.close()


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
def handler(index: FTS5Index, names: Names) -> IndexHandler:
    return IndexHandler(Indexer(index, names), topics=TOPICS)


M = TypeVar("M", bound=ProtoMessage)


def record(topic: events.EventTopic[M], key: int, payload: M, offset: int = 0) -> Record:
    event = events.encode(TOPICS, topic, events.id_key(key), payload)
    return Record(event.topic, 0, offset, event.key, event.value, event.headers)


def sent(message_id: int, text: str, sender_id: int = 7) -> Record:
    message = Message(message_id, 42, message_id, sender_id, f"c{message_id}", text, T0 + message_id)
    return record(chat_topics.MESSAGE_SENT, 42, chat_events.MessageSent(message=message_to_pb(message)))


def recalled(message_id: int, at_ms: int) -> Record:
    payload = chat_events.MessageRecalled(
        conversation_id=42, message_id=message_id, seq=message_id, recalled_by=7, recalled_at=timestamp(at_ms)
    )
    return record(chat_topics.MESSAGE_RECALLED, 42, payload)


def user_updated(user_id: int, display_name: str, at_ms: int) -> Record:
    user = account_pb2.User(id=user_id, username=f"user{user_id}", display_name=display_name)
    payload = account_events.UserUpdated(user=user, updated_at=timestamp(at_ms))
    return record(account_topics.USER_UPDATED, user_id, payload)


async def hits(index: FTS5Index, text: str) -> list[tuple[int, str]]:
    page = await index.search_messages(MessageQuery(text, [42]))
    return [(hit.doc.id, hit.doc.sender_name) for hit in page.items]


async def test_sends_are_indexed_with_their_senders_names_asked_once_per_batch(
    handler: IndexHandler, index: FTS5Index, names: Names
) -> None:
    await handler.handle([sent(1, "harbour at noon"), sent(2, "the harbour", sender_id=8), sent(3, "harbour!")])
    assert await hits(index, "harbour") == [(3, "Ada"), (2, ""), (1, "Ada")]
    assert names.asked == [{7, 8}]


async def test_a_recall_removes_a_message_whatever_the_order_and_a_replay_keeps_it_removed(
    handler: IndexHandler, index: FTS5Index
) -> None:
    await handler.handle([recalled(2, T0 + 60_000), sent(1, "first words"), sent(2, "second words")])
    assert await hits(index, "words") == [(1, "Ada")]
    await handler.handle([recalled(1, T0 + 60_000)])
    await handler.handle([sent(1, "first words")])
    assert await hits(index, "words") == []


async def test_a_user_update_indexes_the_user_and_renames_their_messages(
    handler: IndexHandler, index: FTS5Index
) -> None:
    await handler.handle([sent(1, "lunch?")])
    await handler.handle([user_updated(7, "Ada L.", T0 + 10), user_updated(7, "Ada Lovelace", T0 + 20)])
    assert await hits(index, "lunch") == [(1, "Ada Lovelace")]
    assert [user.display_name for user in await index.search_users("lovelace", 10)] == ["Ada Lovelace"]


async def test_records_that_cannot_be_indexed_are_refused_for_the_dead_letters(handler: IndexHandler) -> None:
    with pytest.raises(InvalidEvent):
        await handler.handle([record(chat_topics.MESSAGE_SENT, 42, chat_events.MessageSent())])
    with pytest.raises(InvalidEvent):
        await handler.handle([record(chat_topics.MESSAGE_RECALLED, 42, chat_events.MessageRecalled(message_id=1))])
    with pytest.raises(InvalidEvent):
        await handler.handle([record(account_topics.USER_UPDATED, 7, account_events.UserUpdated())])
    other = record(chat_topics.CONVERSATION_READ, 42, chat_events.ConversationRead(conversation_id=42))
    with pytest.raises(UnknownEventVersion):
        await handler.handle([other])
