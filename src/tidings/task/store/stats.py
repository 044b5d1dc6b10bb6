"""``SQLStatsReader``: the activity rollups as a reader (the admin module) asks for them (``StatsReader``), from the
task module's tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tidings.pkg.repo import SQLRepo
from tidings.task.stats import Activity, ConversationVolume, Grain
from tidings.task.tables import stats_activity, stats_top_conversations


class SQLStatsReader(SQLRepo):
    async def activity(self, grain: Grain, from_ms: int, to_ms: int) -> list[Activity]:
        table = stats_activity
        async with self._read() as conn:
            rows = await conn.execute(
                select(table)
                .where(table.c.grain == grain.value, table.c.start_ms >= from_ms, table.c.start_ms < to_ms)
                .order_by(table.c.start_ms)
            )
            return [activity_from_row(row) for row in rows]

    async def top_conversations(self, day_ms: int) -> list[ConversationVolume]:
        table = stats_top_conversations
        async with self._read() as conn:
            rows = await conn.execute(
                select(table.c.conversation_id, table.c.messages)
                .where(table.c.day_ms == day_ms)
                .order_by(table.c.place)
            )
            return [ConversationVolume(row.conversation_id, row.messages) for row in rows]


def activity_from_row(row: Any) -> Activity:
    return Activity(
        Grain(row.grain),
        row.start_ms,
        row.messages,
        row.active_senders,
        row.new_users,
        row.new_conversations,
        bool(row.complete),
    )
