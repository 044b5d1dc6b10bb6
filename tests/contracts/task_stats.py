"""The contracts of the stats task's ports: the sources it counts (``ActivitySource``) and the rollups' store
(``RollupStore`` and the readers' ``StatsReader``).

A subclass of ``ActivitySourceContract`` provides ``source`` and ``seed`` (puts ``Seeded`` rows where the source
reads); one of ``RollupStoreContract`` provides ``rollups``, an empty store that is also a ``StatsReader``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.service.account.tables import users
from tidings.service.chat.tables import KIND_GROUP, conversations, messages
from tidings.task.biz.stats import ActivitySource, Counts, RollupStore
from tidings.task.stats import HOUR_MS, Activity, ConversationVolume, Grain, StatsReader

# 2026-12-06 00:00:00 UTC
DAY0 = 1_796_515_200_000


@dataclass(frozen=True)
class SentMessage:
    conversation_id: int
    sender_id: int
    created_at_ms: int


@dataclass
class Seeded:
    """Rows of the sources, by what the stats count of them."""

    messages: list[SentMessage] = field(default_factory=list)
    # Creation times of users and conversations.
    users: list[int] = field(default_factory=list)
    conversations: list[int] = field(default_factory=list)


Seed = Callable[[Seeded], Awaitable[None]]


async def seed_tables(engine: AsyncEngine, seeded: Seeded) -> None:
    """``seeded`` as rows of chat's and account's tables (the columns the stats do not read get filler)."""
    async with engine.begin() as conn:
        if seeded.users:
            await conn.execute(
                insert(users),
                [
                    {
                        "id": 1_000_000 + n,
                        "username": f"u{n}",
                        "display_name": f"User {n}",
                        "password_hash": "x",
                        "created_at_ms": created,
                        "updated_at_ms": created,
                    }
                    for n, created in enumerate(seeded.users)
                ],
            )
        if seeded.conversations:
            await conn.execute(
                insert(conversations),
                [
                    {"id": 2_000_000 + n, "kind": KIND_GROUP, "created_at_ms": created, "updated_at_ms": created}
                    for n, created in enumerate(seeded.conversations)
                ],
            )
        if seeded.messages:
            await conn.execute(
                insert(messages),
                [
                    {
                        "conversation_id": message.conversation_id,
                        "seq": n + 1,
                        "id": 3_000_000 + n,
                        "sender_id": message.sender_id,
                        "client_msg_id": f"c{n}",
                        "text": "hi",
                        "created_at_ms": message.created_at_ms,
                    }
                    for n, message in enumerate(seeded.messages)
                ],
            )


class ActivitySourceContract:
    async def test_nothing_to_count(self, source: ActivitySource) -> None:
        assert await source.first_activity_ms() is None
        assert await source.counts(DAY0, DAY0 + HOUR_MS) == Counts(0, 0, 0, 0)
        assert await source.top_conversations(DAY0, DAY0 + HOUR_MS, 10) == []

    async def test_counts_are_of_what_was_created_within_the_half_open_range(
        self, source: ActivitySource, seed: Seed
    ) -> None:
        await seed(
            Seeded(
                messages=[
                    SentMessage(7, 1, DAY0 - 1),  # the hour before
                    SentMessage(7, 1, DAY0),
                    SentMessage(7, 1, DAY0 + 10),
                    SentMessage(8, 2, DAY0 + HOUR_MS - 1),
                    SentMessage(8, 3, DAY0 + HOUR_MS),  # the hour after
                ],
                users=[DAY0 - 5, DAY0 + 5, DAY0 + HOUR_MS],
                conversations=[DAY0 + 1, DAY0 + 2, DAY0 - 2],
            )
        )
        assert await source.first_activity_ms() == DAY0 - 5
        assert await source.counts(DAY0, DAY0 + HOUR_MS) == Counts(
            messages=3, active_senders=2, new_users=1, new_conversations=2
        )
        assert await source.counts(DAY0 + HOUR_MS, DAY0 + 2 * HOUR_MS) == Counts(1, 1, 1, 0)

    async def test_top_conversations_busiest_first_ties_by_lower_id(self, source: ActivitySource, seed: Seed) -> None:
        sends = {30: 2, 10: 3, 20: 2, 40: 1}
        await seed(
            Seeded(
                messages=[
                    SentMessage(conversation, 1, DAY0 + n)
                    for conversation, count in sends.items()
                    for n in range(count)
                ]
                + [SentMessage(40, 1, DAY0 + HOUR_MS)]  # outside the range
            )
        )
        assert await source.top_conversations(DAY0, DAY0 + HOUR_MS, 3) == [
            ConversationVolume(10, 3),
            ConversationVolume(20, 2),
            ConversationVolume(30, 2),
        ]


class Rollups(RollupStore, StatsReader, Protocol):
    pass


def hour(start_ms: int, messages: int = 1, *, complete: bool = True) -> Activity:
    return Activity(Grain.HOUR, start_ms, messages, 1, 0, 0, complete)


class RollupStoreContract:
    async def test_an_empty_store(self, rollups: Rollups) -> None:
        assert await rollups.checkpoint(Grain.HOUR) is None
        assert await rollups.activity(Grain.HOUR, 0, DAY0 * 2) == []
        assert await rollups.top_conversations(DAY0) == []

    async def test_a_bucket_saved_again_is_replaced_and_only_a_complete_one_moves_the_checkpoint(
        self, rollups: Rollups
    ) -> None:
        await rollups.save(hour(DAY0, 5, complete=False), None, computed_at_ms=1)
        assert await rollups.checkpoint(Grain.HOUR) is None
        await rollups.save(hour(DAY0, 7), None, computed_at_ms=2)
        await rollups.save(hour(DAY0 + HOUR_MS, 2, complete=False), None, computed_at_ms=2)
        assert await rollups.checkpoint(Grain.HOUR) == DAY0 + HOUR_MS
        assert await rollups.activity(Grain.HOUR, DAY0, DAY0 + 2 * HOUR_MS) == [
            hour(DAY0, 7),
            hour(DAY0 + HOUR_MS, 2, complete=False),
        ]
        assert await rollups.activity(Grain.HOUR, DAY0 + HOUR_MS, DAY0 + 2 * HOUR_MS) == [
            hour(DAY0 + HOUR_MS, 2, complete=False)
        ]
        assert await rollups.checkpoint(Grain.DAY) is None  # each grain its own

    async def test_the_checkpoint_never_moves_back(self, rollups: Rollups) -> None:
        await rollups.save(hour(DAY0 + HOUR_MS), None, computed_at_ms=1)
        await rollups.save(hour(DAY0), None, computed_at_ms=2)
        assert await rollups.checkpoint(Grain.HOUR) == DAY0 + 2 * HOUR_MS

    async def test_a_days_top_conversations_are_replaced_with_its_row(self, rollups: Rollups) -> None:
        day = Activity(Grain.DAY, DAY0, 6, 2, 1, 1, complete=False)
        await rollups.save(day, [ConversationVolume(5, 4), ConversationVolume(3, 2)], computed_at_ms=1)
        assert await rollups.top_conversations(DAY0) == [ConversationVolume(5, 4), ConversationVolume(3, 2)]
        await rollups.save(day, [ConversationVolume(3, 9)], computed_at_ms=2)
        assert await rollups.top_conversations(DAY0) == [ConversationVolume(3, 9)]
        assert await rollups.activity(Grain.DAY, DAY0, DAY0 + 1) == [day]
        assert await rollups.activity(Grain.HOUR, DAY0, DAY0 + 1) == []
        await rollups.save(hour(DAY0), None, computed_at_ms=3)  # an hour's save leaves the day's top alone
        assert await rollups.top_conversations(DAY0) == [ConversationVolume(3, 9)]
