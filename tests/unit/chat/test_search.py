"""Message search on fakes and the embedded index: only the conversations the caller is a member of now, a
conversation they are not in refused as history refuses it, and an index that does not answer is
SEARCH_UNAVAILABLE. An operator searches every conversation, or one, without being a member."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.chat.fakes import World
from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.search.fts5 import FTS5Index
from tidings.search.model import MessageDoc, MessageHit, MessageQuery, Page, Recall, SearchUnavailable, version_at
from tidings.service.chat.biz.search import Search


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[FTS5Index]:
    index = FTS5Index(str(tmp_path / "search.db"))
    await index.ensure()
    yield index
    await index.close()


@pytest.fixture
def world() -> World:
    return World()


async def indexed(world: World, index: FTS5Index) -> None:
    """What the index job would have written for every message sent so far."""
    await index.index_messages(
        [
            MessageDoc(m.id, m.conversation_id, m.sender_id, "", m.seq, m.created_at_ms, m.text, False, version_at(1))
            for m in world.publisher.log
        ]
    )


async def ids(search: Search, user_id: int, query: str, conversation_id: int | None = None) -> list[int]:
    page = await search.messages(user_id, query, conversation_id=conversation_id, cursor=None, limit=50)
    return [hit.doc.conversation_id for hit in page.items]


async def test_only_the_callers_current_conversations_are_searched(world: World, index: FTS5Index) -> None:
    ours = (await world.chats.create_group(1, "ours", [2])).conversation.id
    theirs = (await world.chats.create_group(3, "theirs", [4])).conversation.id
    await world.msgs.send(ours, 1, "a", "meet at the harbour")
    await world.msgs.send(theirs, 3, "b", "the harbour is ours")
    await indexed(world, index)
    search = Search(world.access, world.conversations, index)
    assert await ids(search, 2, "harbour") == [ours]
    assert await ids(search, 4, " harbour ") == [theirs]
    await world.chats.remove_member(2, ours, 2)  # leaves
    assert await ids(search, 2, "harbour") == []


async def test_one_conversation_is_searched_only_by_its_members(world: World, index: FTS5Index) -> None:
    ours = (await world.chats.create_group(1, "ours", [2])).conversation.id
    other = (await world.chats.create_group(1, "other", [2])).conversation.id
    await world.msgs.send(ours, 1, "a", "harbour one")
    await world.msgs.send(other, 1, "b", "harbour two")
    await indexed(world, index)
    search = Search(world.access, world.conversations, index)
    assert await ids(search, 2, "harbour", ours) == [ours]
    with pytest.raises(errors.TidingsError) as stranger:
        await ids(search, 9, "harbour", ours)
    assert chat_errors.is_conversation_not_found(stranger.value)
    await world.chats.remove_member(2, ours, 2)
    with pytest.raises(errors.TidingsError) as left:
        await ids(search, 2, "harbour", ours)
    assert chat_errors.is_not_a_member(left.value)


@pytest.mark.parametrize(
    ("query", "limit", "field"),
    [
        ("", 20, "query"),
        ("  ", 20, "query"),
        ("x" * 257, 20, "query"),
        ("a\x00b", 20, "query"),
        ("hi", 0, "limit"),
        ("hi", 51, "limit"),
    ],
)
async def test_bad_input_names_its_field(world: World, index: FTS5Index, query: str, limit: int, field: str) -> None:
    search = Search(world.access, world.conversations, index)
    with pytest.raises(errors.TidingsError) as raised:
        await search.messages(1, query, conversation_id=None, cursor=None, limit=limit)
    assert common_errors.is_invalid_argument(raised.value)
    assert raised.value.metadata["field"] == field


class DownIndex:
    async def search_messages(self, query: MessageQuery) -> Page[MessageHit]:
        raise SearchUnavailable("connection refused")


async def test_an_index_that_does_not_answer_is_search_unavailable(world: World) -> None:
    await world.chats.create_group(1, "ours", [2])
    search = Search(world.access, world.conversations, DownIndex())
    with pytest.raises(errors.TidingsError) as raised:
        await ids(search, 1, "harbour")
    assert common_errors.is_search_unavailable(raised.value)
    assert raised.value.code == 503


async def test_an_operator_searches_every_conversation_or_one_without_being_a_member(
    world: World, index: FTS5Index
) -> None:
    # The operator (900) is no member of anything.
    ours = (await world.chats.create_group(1, "ours", [2])).conversation.id
    theirs = (await world.chats.create_group(1, "theirs", [4])).conversation.id
    await world.msgs.send(ours, 1, "a", "meet at the harbour")
    await world.msgs.send(theirs, 1, "b", "the harbour is ours")
    await world.msgs.send(theirs, 1, "c", "harbour gossip to remove")
    await index.index_messages(
        [
            MessageDoc(m.id, m.conversation_id, m.sender_id, "", m.seq, m.created_at_ms + i, m.text, False, 1000)
            for i, m in enumerate(world.publisher.log)
        ]
    )
    removed = world.publisher.log[-1]
    await index.recall_messages([Recall(removed.id, theirs, removed.seq, 2000)])
    search = Search(world.access, world.conversations, index)

    async def found(conversation_id: int | None) -> list[int]:
        page = await search.messages(
            900, "harbour", conversation_id=conversation_id, cursor=None, limit=50, by_operator=True
        )
        return [hit.doc.conversation_id for hit in page.items]

    assert await found(None) == [theirs, ours]  # newest first; the recalled one never
    assert await found(ours) == [ours]
    with pytest.raises(errors.TidingsError) as unknown:
        await found(ours + 999)
    assert chat_errors.is_conversation_not_found(unknown.value)
    with pytest.raises(errors.TidingsError) as bad:
        await search.messages(900, "  ", conversation_id=None, cursor=None, limit=50, by_operator=True)
    assert bad.value.metadata["field"] == "query"
    member = await search.messages(4, "harbour", conversation_id=None, cursor=None, limit=50)
    assert [hit.doc.conversation_id for hit in member.items] == [theirs]  # a member still sees only theirs
