"""The stats task on MariaDB: its ports' contracts, and rollups that match a count straight from the tables across
hours and days, unchanged by a rerun."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.task_runs import held_lease
from tests.contracts.task_stats import (
    DAY0,
    ActivitySourceContract,
    Rollups,
    RollupStoreContract,
    Seed,
    Seeded,
    SentMessage,
    seed_tables,
)
from tidings.pkg.clock import FakeClock
from tidings.task.biz.stats import ActivitySource, StatsRollup
from tidings.task.data.stats import SQLActivitySource, SQLRollups
from tidings.task.stats import DAY_MS, HOUR_MS, ConversationVolume, Grain
from tidings.task.store.stats import SQLStatsReader


async def held_rollups(engine: AsyncEngine) -> SQLRollups:
    """The rollups' store of a process holding the stats task's lease (its writes are fenced by it)."""
    return SQLRollups(engine, await held_lease(engine, "stats"))


class TestActivitySourceOnMariaDB(ActivitySourceContract):
    @pytest.fixture
    def source(self, mysql_engine: AsyncEngine, statements: AsyncEngine) -> ActivitySource:
        return SQLActivitySource(mysql_engine, statements=statements)

    @pytest.fixture
    def seed(self, mysql_engine: AsyncEngine) -> Seed:
        async def into_tables(seeded: Seeded) -> None:
            await seed_tables(mysql_engine, seeded)

        return into_tables


class TestRollupStoreOnMariaDB(RollupStoreContract):
    @pytest.fixture
    async def rollups(self, mysql_engine: AsyncEngine) -> Rollups:
        return await held_rollups(mysql_engine)


async def _direct_counts(engine: AsyncEngine, start_ms: int, end_ms: int) -> tuple[int, ...]:
    """What a bucket holds, counted straight from the tables (not through the task's adapters)."""
    within = "created_at_ms >= :start AND created_at_ms < :end"
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    f"SELECT (SELECT COUNT(*) FROM messages WHERE {within}),"
                    f" (SELECT COUNT(DISTINCT sender_id) FROM messages WHERE {within}),"
                    f" (SELECT COUNT(*) FROM users WHERE {within}),"
                    f" (SELECT COUNT(*) FROM conversations WHERE {within})"
                ),
                {"start": start_ms, "end": end_ms},
            )
        ).one()
    return tuple(int(value) for value in row)


async def _direct_top(engine: AsyncEngine, day_ms: int) -> list[ConversationVolume]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT conversation_id, COUNT(*) AS n FROM messages"
                " WHERE created_at_ms >= :start AND created_at_ms < :end"
                " GROUP BY conversation_id ORDER BY n DESC, conversation_id LIMIT 10"
            ),
            {"start": day_ms, "end": day_ms + DAY_MS},
        )
        return [ConversationVolume(row.conversation_id, row.n) for row in rows]


async def _tables(engine: AsyncEngine) -> list[list[tuple[object, ...]]]:
    async with engine.connect() as conn:
        return [
            [tuple(row) for row in await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
            for table in ("stats_activity", "stats_top_conversations", "stats_checkpoints")
        ]


async def test_stats_rollups_match_a_count_of_the_tables_across_hours_and_days_and_a_rerun_changes_nothing(
    mysql_engine: AsyncEngine, statements: AsyncEngine
) -> None:
    # Three days of sends from 20 users in 15 conversations, denser around midnights and hours' ends.
    rng = random.Random(7)
    instants = [DAY0 + rng.randrange(3 * DAY_MS) for _ in range(1500)]
    instants += [DAY0 + day * DAY_MS + offset for day in (1, 2) for offset in (-1, 0, 1)]
    instants += [DAY0 + hour * HOUR_MS + offset for hour in range(5, 72, 5) for offset in (-1, 0)]
    seeded = Seeded(
        messages=[SentMessage(rng.randrange(1, 16) ** 2, rng.randrange(1, 21), at) for at in instants],
        users=[DAY0 + rng.randrange(3 * DAY_MS) for _ in range(40)] + [DAY0 + DAY_MS - 1, DAY0 + DAY_MS],
        conversations=[DAY0 + rng.randrange(3 * DAY_MS) for _ in range(25)] + [DAY0 + 2 * DAY_MS],
    )
    await seed_tables(mysql_engine, seeded)
    clock = FakeClock(DAY0 + 2 * DAY_MS + 20 * HOUR_MS + 30 * 60_000)  # day 2, 20:30
    rollup = StatsRollup(
        SQLActivitySource(mysql_engine, statements=statements),
        await held_rollups(mysql_engine),
        clock.now_ms,
        settle_s=300,
        max_buckets=1000,
    )
    assert await rollup.run() == (2 * 24 + 21) + 3
    reader = SQLStatsReader(mysql_engine, statements=statements)

    async def check() -> None:
        for grain in (Grain.HOUR, Grain.DAY):
            buckets = await reader.activity(grain, DAY0, clock.now_ms())
            assert [bucket.start_ms for bucket in buckets] == list(range(DAY0, clock.now_ms(), grain.ms))
            for bucket in buckets:
                counted = (bucket.messages, bucket.active_senders, bucket.new_users, bucket.new_conversations)
                assert counted == await _direct_counts(mysql_engine, bucket.start_ms, bucket.start_ms + grain.ms)
        for day in range(3):
            top = await reader.top_conversations(DAY0 + day * DAY_MS)
            assert len(top) == 10
            assert top == await _direct_top(mysql_engine, DAY0 + day * DAY_MS)
        assert sum(bucket.messages for bucket in await reader.activity(Grain.DAY, DAY0, clock.now_ms())) == len(
            instants
        )

    await check()
    before = await _tables(mysql_engine)
    assert await rollup.run() == 2  # the open hour and day only: the rest is complete
    assert await _tables(mysql_engine) == before
    clock.advance(ms=4 * HOUR_MS)  # day 3, 00:30: every seeded bucket has settled
    await rollup.run()
    await check()
    days = await reader.activity(Grain.DAY, DAY0, DAY0 + 3 * DAY_MS)
    assert [day.complete for day in days] == [True, True, True]
