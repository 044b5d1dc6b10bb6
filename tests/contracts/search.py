"""The contract of the search index (``tidings.search.model.SearchIndex``): what a query finds, in which order and
with which highlights, what a write may and may not overwrite, and the by-query edits; and of rebuilding it
(``IndexAdmin``): a version written beside the searched one, swapped in, the old one dropped.

A subclass provides a ``search`` fixture: an empty index, made ready (``ensure``), whose writes are visible to the
next query.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import pytest

from tidings.api.common.v1 import errors as common_errors
from tidings.pkg.errors import TidingsError
from tidings.search.model import (
    EVERYWHERE,
    KINDS,
    IndexVersions,
    MessageDoc,
    MessageQuery,
    Recall,
    Scope,
    SearchIndex,
    UserDoc,
    rebuilt_tombstone_version,
    version_at,
)

T0 = 1_700_000_000_000


def message(
    message_id: int,
    text: str,
    *,
    conversation_id: int = 10,
    sender_id: int = 7,
    sender_name: str = "Ada",
    at_ms: int | None = None,
    version: int | None = None,
) -> MessageDoc:
    at_ms = T0 + message_id if at_ms is None else at_ms
    return MessageDoc(
        id=message_id,
        conversation_id=conversation_id,
        sender_id=sender_id,
        sender_name=sender_name,
        seq=message_id,
        created_at_ms=at_ms,
        text=text,
        recalled=False,
        version=version_at(at_ms) if version is None else version,
    )


async def found(
    search: SearchIndex, text: str, conversation_ids: tuple[int, ...] | Literal[Scope.EVERYWHERE] = (10,)
) -> list[int]:
    page = await search.search_messages(MessageQuery(text, conversation_ids, limit=50))
    return [hit.doc.id for hit in page.items]


class SearchIndexContract:
    async def test_a_latin_word_finds_its_message_whatever_the_case(self, search: SearchIndex) -> None:
        await search.index_messages([message(1, "Meet at the harbour at noon"), message(2, "the market is closed")])
        assert await found(search, "harbour") == [1]
        assert await found(search, "HARBOUR") == [1]
        assert await found(search, "nothing") == []

    async def test_a_chinese_phrase_inside_a_sentence_finds_its_message(self, search: SearchIndex) -> None:
        await search.index_messages(
            [message(1, "他笑着对大家说你好世界然后走了"), message(2, "今天天气很好"), message(3, "hello world")]
        )
        assert await found(search, "你好世界") == [1]
        assert await found(search, "你好") == [1]  # two characters: shorter than any trigram
        assert await found(search, "天气") == [2]

    async def test_a_japanese_phrase_finds_its_message(self, search: SearchIndex) -> None:
        await search.index_messages([message(1, "今日は皆さんにこんにちはと言いました"), message(2, "ありがとう")])
        assert await found(search, "こんにちは") == [1]
        assert await found(search, "ありがとう") == [2]

    async def test_every_word_of_the_query_must_appear(self, search: SearchIndex) -> None:
        await search.index_messages(
            [message(1, "the harbour opens at noon"), message(2, "the harbour is closed"), message(3, "noon tea")]
        )
        assert await found(search, "harbour noon") == [1]
        assert await found(search, "noon harbour") == [1]
        assert await found(search, "harbour 你好") == []

    async def test_only_the_given_conversations_are_searched(self, search: SearchIndex) -> None:
        await search.index_messages(
            [
                message(1, "secret plans", conversation_id=10),
                message(2, "secret plans", conversation_id=20),
                message(3, "secret plans", conversation_id=30),
            ]
        )
        assert await found(search, "secret", (10, 30)) == [3, 1]
        assert await found(search, "secret", (40,)) == []
        assert await found(search, "secret", ()) == []

    async def test_everywhere_searches_every_conversation_but_never_returns_a_recalled_message(
        self, search: SearchIndex
    ) -> None:
        await search.index_messages(
            [
                message(1, "secret plans", conversation_id=10),
                message(2, "secret plans", conversation_id=20),
                message(3, "secret plans", conversation_id=30),
                message(4, "open plans", conversation_id=40),
            ]
        )
        await search.recall_messages([Recall(2, 20, 2, version_at(T0 + 60_000))])
        assert await found(search, "secret", EVERYWHERE) == [3, 1]
        assert await found(search, "plans", EVERYWHERE) == [4, 3, 1]
        first = await search.search_messages(MessageQuery("plans", EVERYWHERE, limit=2))
        assert [hit.doc.id for hit in first.items] == [4, 3]
        assert first.next_cursor is not None
        rest = await search.search_messages(MessageQuery("plans", EVERYWHERE, cursor=first.next_cursor, limit=2))
        assert ([hit.doc.id for hit in rest.items], rest.next_cursor) == ([1], None)

    async def test_a_recalled_message_is_never_returned_and_a_replay_does_not_bring_it_back(
        self, search: SearchIndex
    ) -> None:
        sent = message(1, "delete this embarrassing typo")
        await search.index_messages([sent, message(2, "a typo that stays")])
        await search.recall_messages([Recall(1, 10, 1, version_at(T0 + 60_000))])
        assert await found(search, "typo") == [2]
        await search.index_messages([sent])  # the send replayed after the recall
        assert await found(search, "typo") == [2]
        assert await found(search, "embarrassing") == []

    async def test_a_recall_before_its_send_wins(self, search: SearchIndex) -> None:
        await search.recall_messages([Recall(1, 10, 1, version_at(T0 + 60_000))])
        await search.index_messages([message(1, "out of order delivery")])
        assert await found(search, "delivery") == []

    async def test_an_older_version_never_overwrites_a_newer_one(self, search: SearchIndex) -> None:
        await search.index_messages([message(1, "the newer words", version=version_at(T0 + 5))])
        await search.index_messages([message(1, "the older words", version=version_at(T0 + 1))])
        assert await found(search, "newer") == [1]
        assert await found(search, "older") == []
        await search.index_messages([message(1, "the newest words", version=version_at(T0 + 9))])
        assert await found(search, "newest") == [1]

    async def test_pages_follow_newest_first_without_duplicates_or_gaps(self, search: SearchIndex) -> None:
        # Two messages share each millisecond: the id breaks the tie.
        docs = [message(i, f"ping number {i}", at_ms=T0 + i // 2) for i in range(1, 12)]
        await search.index_messages(docs)
        seen: list[int] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await search.search_messages(MessageQuery("ping", (10,), cursor=cursor, limit=4))
            seen += [hit.doc.id for hit in page.items]
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted(range(1, 12), key=lambda i: (T0 + i // 2, i), reverse=True)
        assert pages == 3

    async def test_a_cursor_that_is_not_ours_is_invalid_naming_the_field(self, search: SearchIndex) -> None:
        for cursor in ("not-a-cursor", "WzEsMiwzXQ", "e30", "WyJhIiwxXQ", "W3RydWUsMV0"):
            with pytest.raises(TidingsError) as caught:
                await search.search_messages(MessageQuery("ping", (10,), cursor=cursor))
            assert common_errors.is_invalid_argument(caught.value)
            assert caught.value.metadata["field"] == "cursor"

    async def test_highlights_point_at_the_matched_text(self, search: SearchIndex) -> None:
        body = "Harbour talk: 我们在你好世界见面, see the harbour"
        await search.index_messages([message(1, body)])
        (hit,) = (await search.search_messages(MessageQuery("harbour", (10,)))).items
        assert [body[start:end] for start, end in hit.highlights] == ["Harbour", "harbour"]
        (hit,) = (await search.search_messages(MessageQuery("你好世界", (10,)))).items
        assert [body[start:end] for start, end in hit.highlights] == ["你好世界"]
        assert hit.doc.text == body

    async def test_query_syntax_is_only_text(self, search: SearchIndex) -> None:
        await search.index_messages([message(1, "plain words here")])
        for query in ("text:plain OR *", "NEAR(plain words)", "plain AND", "*:*", "p*", "sender_id:7", '"'):
            assert await found(search, query) == [], query

    async def test_a_rename_reaches_the_senders_messages(self, search: SearchIndex) -> None:
        await search.index_messages(
            [message(1, "lunch?", sender_id=7), message(2, "lunch!", sender_id=8, sender_name="Bob")]
        )
        assert await search.rename_sender(7, "Ada Lovelace") == 1
        assert await search.rename_sender(7, "Ada Lovelace") == 0  # once is enough
        names = {
            hit.doc.id: hit.doc.sender_name
            for hit in (await search.search_messages(MessageQuery("lunch", (10,)))).items
        }
        assert names == {1: "Ada Lovelace", 2: "Bob"}

    async def test_a_rename_does_not_outrank_the_next_event(self, search: SearchIndex) -> None:
        await search.index_messages([message(1, "rename then recall")])
        await search.rename_sender(7, "Ada L.")
        await search.recall_messages([Recall(1, 10, 1, version_at(T0 + 2))])
        assert await found(search, "recall") == []

    async def test_messages_below_a_seq_are_deleted(self, search: SearchIndex) -> None:
        await search.index_messages(
            [message(i, f"old news {i}") for i in range(1, 6)] + [message(9, "old news elsewhere", conversation_id=20)]
        )
        assert await search.delete_below(10, 4) == 3
        assert await found(search, "news", (10, 20)) == [9, 5, 4]

    async def test_users_are_found_by_username_and_display_name_prefix(self, search: SearchIndex) -> None:
        await search.index_users(
            [
                UserDoc(1, "alice", "Alice Liddell", version_at(T0)),
                UserDoc(2, "bob", "Robert Smith", version_at(T0)),
                UserDoc(3, "zhang", "张三丰", version_at(T0)),
                UserDoc(4, "alfred", "Alfred Pennyworth", version_at(T0)),
            ]
        )

        async def users(query: str) -> set[int]:
            return {user.id for user in await search.search_users(query, 10)}

        assert await users("ali") == {1}
        assert await users("Al") == {1, 4}
        assert await users("smi") == {2}
        assert await users("张三") == {3}
        assert await users("robert sm") == {2}
        assert await users("robert al") == set()
        assert await users("nobody") == set()

    async def test_a_user_keeps_the_newest_version(self, search: SearchIndex) -> None:
        await search.index_users([UserDoc(1, "alice", "Alice Liddell", version_at(T0 + 5))])
        await search.index_users([UserDoc(1, "alice", "Old Name", version_at(T0 + 1))])
        (user,) = await search.search_users("alice", 10)
        assert user.display_name == "Alice Liddell"
        assert await search.search_users("old", 10) == []


async def user_ids(search: SearchIndex, query: str) -> set[int]:
    return {user.id for user in await search.search_users(query, 10)}


class IndexAdminContract:
    async def test_the_first_version_is_searched_and_written(self, search: SearchIndex) -> None:
        for kind in KINDS:
            assert await search.versions(kind) == IndexVersions(1, (1,))

    async def test_a_rebuilt_version_is_written_beside_the_searched_one_until_the_swap(
        self, search: SearchIndex
    ) -> None:
        await search.index_messages([message(1, "only the old version has it")])
        assert await search.create_next("messages") == 2
        assert await search.versions("messages") == IndexVersions(1, (1, 2))
        assert await search.versions("users") == IndexVersions(1, (1,))
        await search.put_messages(2, [message(2, "rebuilt from storage")])
        await search.index_messages([message(3, "sent during the rebuild")])
        # Searches still read the old version alone.
        assert await found(search, "rebuilt") == []
        assert await found(search, "old") == [1]
        assert await found(search, "during") == [3]
        await search.swap("messages", 2)
        assert await search.versions("messages") == IndexVersions(2, (2,))
        assert await found(search, "rebuilt") == [2]
        assert await found(search, "during") == [3]  # written to both
        assert await found(search, "old") == []
        await search.swap("messages", 2)  # once is enough
        assert await search.versions("messages") == IndexVersions(2, (2,))
        assert await found(search, "rebuilt") == [2]
        # From now on writes go to the new version alone.
        await search.index_messages([message(4, "after the swap")])
        assert await found(search, "swap") == [4]

    async def test_a_put_leaves_a_newer_version_of_a_document_as_it_is(self, search: SearchIndex) -> None:
        version = await search.create_next("messages")
        # Recalled while the rebuild read the message from storage before the recall.
        await search.recall_messages([Recall(1, 10, 1, version_at(T0 + 60_000))])
        await search.put_messages(version, [message(1, "recalled words")])
        # A recalled message rebuilt as a tombstone, then its send replayed.
        tombstone = replace(message(2, "", version=rebuilt_tombstone_version(T0 + 2)), recalled=True)
        await search.put_messages(version, [tombstone])
        await search.index_messages([message(2, "replayed words")])
        await search.swap("messages", version)
        assert await found(search, "words") == []

    async def test_edits_by_query_reach_every_version_written(self, search: SearchIndex) -> None:
        docs = [message(i, f"news {i}", sender_id=7) for i in range(1, 4)]
        await search.index_messages(docs)
        version = await search.create_next("messages")
        await search.put_messages(version, docs)
        assert await search.rename_sender(7, "Ada L.") == 3 * 2
        assert await search.delete_below(10, 2) == 1 * 2
        await search.swap("messages", version)
        hits = (await search.search_messages(MessageQuery("news", (10,)))).items
        assert {hit.doc.id: hit.doc.sender_name for hit in hits} == {2: "Ada L.", 3: "Ada L."}

    async def test_the_old_version_is_dropped_and_the_searched_one_never(self, search: SearchIndex) -> None:
        await search.index_messages([message(1, "still found")])
        version = await search.create_next("messages")
        await search.put_messages(version, [message(1, "still found")])
        with pytest.raises(ValueError, match="searched"):
            await search.drop("messages", 1)
        await search.swap("messages", version)
        await search.drop("messages", 1)
        await search.drop("messages", 1)  # gone already
        with pytest.raises(ValueError, match="searched"):
            await search.drop("messages", version)
        assert await search.versions("messages") == IndexVersions(2, (2,))
        assert await found(search, "still") == [1]
        assert await search.create_next("messages") == 3

    async def test_users_are_rebuilt_the_same_way(self, search: SearchIndex) -> None:
        await search.index_users([UserDoc(1, "alice", "Alice Liddell", version_at(T0))])
        version = await search.create_next("users")
        await search.put_users(version, [UserDoc(2, "bob", "Robert Smith", version_at(T0))])
        await search.index_users([UserDoc(3, "carol", "Carol Danvers", version_at(T0))])
        assert await user_ids(search, "bob") == set()
        await search.swap("users", version)
        await search.drop("users", 1)
        assert (await user_ids(search, "bob"), await user_ids(search, "alice")) == ({2}, set())
        assert await user_ids(search, "carol") == {3}
        assert await search.versions("users") == IndexVersions(version, (version,))
