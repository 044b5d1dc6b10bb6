"""The contract of what the reindex task rebuilds the search index from (``IndexSource``): messages in key order,
the recent ones in creation order, users, and the senders' names.

A subclass provides ``source`` and ``seed`` (puts messages and users where the source reads them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.service.account.tables import users
from tidings.service.chat.message import Message
from tidings.service.chat.tables import messages
from tidings.task.biz.reindex import IndexSource, StoredUser, recent_key

T0 = 1_700_000_000_000

Seed = Callable[[Sequence[Message], Sequence[StoredUser]], Awaitable[None]]


def stored(
    conversation_id: int, seq: int, *, at_ms: int | None = None, sender_id: int = 1, text: str = "hi"
) -> Message:
    """A stored message, its id made of its place."""
    return Message(
        id=conversation_id * 1000 + seq,
        conversation_id=conversation_id,
        seq=seq,
        sender_id=sender_id,
        client_msg_id=f"c{conversation_id}-{seq}",
        text=text,
        created_at_ms=T0 + seq if at_ms is None else at_ms,
    )


def user(user_id: int, name: str = "", *, updated_at_ms: int = T0) -> StoredUser:
    return StoredUser(user_id, f"user{user_id}", name or f"User {user_id}", updated_at_ms)


async def seed_tables(
    engine: AsyncEngine, stored_messages: Sequence[Message], stored_users: Sequence[StoredUser]
) -> None:
    """Messages and users as rows of chat's and account's tables."""
    async with engine.begin() as conn:
        if stored_users:
            await conn.execute(
                insert(users),
                [
                    {
                        "id": u.id,
                        "username": u.username,
                        "display_name": u.display_name,
                        "password_hash": "x",
                        "created_at_ms": T0,
                        "updated_at_ms": u.updated_at_ms,
                    }
                    for u in stored_users
                ],
            )
        if stored_messages:
            await conn.execute(insert(messages), [m.__dict__ for m in stored_messages])


class IndexSourceContract:
    async def test_nothing_stored(self, source: IndexSource) -> None:
        assert await source.estimate() == 0
        assert await source.messages_after(0, 0, 10) == []
        assert await source.messages_since(0, (), 10) == []
        assert await source.users_after(0, 10) == []
        assert await source.users_updated_since(0, 0, 10) == []
        assert await source.sender_names([1, 2]) == {}

    async def test_messages_come_in_key_order_page_after_page(self, source: IndexSource, seed: Seed) -> None:
        stored_messages = [stored(c, s) for c in (3, 1, 2) for s in (2, 1, 3)]
        await seed(stored_messages, [user(1)])
        assert await source.estimate() == 9 + 1
        pages, after = [], (0, 0)
        while page := await source.messages_after(*after, 4):
            pages.append([(m.conversation_id, m.seq) for m in page])
            after = (page[-1].conversation_id, page[-1].seq)
        assert pages == [[(1, 1), (1, 2), (1, 3), (2, 1)], [(2, 2), (2, 3), (3, 1), (3, 2)], [(3, 3)]]
        [first] = await source.messages_after(0, 0, 1)
        assert first == stored(1, 1)

    async def test_a_recalled_message_comes_recalled(self, source: IndexSource, seed: Seed) -> None:
        recalled = Message(5, 1, 1, 1, "c", "", T0, recalled=True)
        await seed([recalled], [])
        assert await source.messages_after(0, 0, 10) == [recalled]

    async def test_recent_messages_come_in_creation_order_from_the_instant_on(
        self, source: IndexSource, seed: Seed
    ) -> None:
        # Three created in the same millisecond, one before the instant.
        stored_messages = [
            stored(1, 1, at_ms=T0 - 1),
            stored(2, 1, at_ms=T0, sender_id=2),
            stored(1, 2, at_ms=T0, sender_id=1),
            stored(3, 1, at_ms=T0, sender_id=1),
            stored(1, 3, at_ms=T0 + 5),
        ]
        await seed(stored_messages, [])
        seen: list[int] = []
        after: tuple[int, ...] = ()
        while page := await source.messages_since(T0, after, 2):
            seen += [m.id for m in page]
            after = recent_key(page[-1])
        assert seen == [1002, 3001, 2001, 1003]

    async def test_users_page_by_id_and_the_updated_ones_from_the_instant_on(
        self, source: IndexSource, seed: Seed
    ) -> None:
        await seed([], [user(3, updated_at_ms=T0 + 9), user(1, "Ada"), user(2, updated_at_ms=T0 - 1)])
        assert [u.id for u in await source.users_after(0, 2)] == [1, 2]
        assert await source.users_after(2, 2) == [user(3, updated_at_ms=T0 + 9)]
        assert [u.id for u in await source.users_updated_since(T0, 0, 10)] == [1, 3]
        assert [u.id for u in await source.users_updated_since(T0, 1, 10)] == [3]
        assert await source.sender_names([1, 3, 99]) == {1: "Ada", 3: "User 3"}
