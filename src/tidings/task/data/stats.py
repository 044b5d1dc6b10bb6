"""The stats task's adapters: ``SQLActivitySource`` counts from chat's and account's published tables (range scans
on their creation-time indexes), ``SQLRollups`` keeps the rollups in the task module's tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, distinct, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo
from tidings.service.account.tables import users
from tidings.service.chat.tables import conversations, messages
from tidings.task.biz.errors import Unavailable
from tidings.task.biz.stats import Counts
from tidings.task.data.leases import FencedRepo
from tidings.task.stats import Activity, ConversationVolume, Grain
from tidings.task.store.stats import SQLStatsReader
from tidings.task.tables import stats_activity, stats_checkpoints, stats_top_conversations


class SQLActivitySource(SQLRepo):
    async def first_activity_ms(self) -> int | None:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                row = (
                    await conn.execute(
                        select(
                            select(func.min(messages.c.created_at_ms)).scalar_subquery(),
                            select(func.min(users.c.created_at_ms)).scalar_subquery(),
                            select(func.min(conversations.c.created_at_ms)).scalar_subquery(),
                        )
                    )
                ).one()
        found = [int(value) for value in row if value is not None]
        return min(found) if found else None

    async def counts(self, start_ms: int, end_ms: int) -> Counts:
        sent = _within(messages.c.created_at_ms, start_ms, end_ms)
        # One statement: the four counts see one snapshot of the tables.
        statement = select(
            select(func.count()).select_from(messages).where(sent).scalar_subquery(),
            select(func.count(distinct(messages.c.sender_id))).where(sent).scalar_subquery(),
            select(func.count())
            .select_from(users)
            .where(_within(users.c.created_at_ms, start_ms, end_ms))
            .scalar_subquery(),
            select(func.count())
            .select_from(conversations)
            .where(_within(conversations.c.created_at_ms, start_ms, end_ms))
            .scalar_subquery(),
        )
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                row = (await conn.execute(statement)).one()
        return Counts(*(int(value or 0) for value in row))

    async def top_conversations(self, start_ms: int, end_ms: int, limit: int) -> list[ConversationVolume]:
        volume = func.count().label("volume")
        statement = (
            select(messages.c.conversation_id, volume)
            .where(_within(messages.c.created_at_ms, start_ms, end_ms))
            .group_by(messages.c.conversation_id)
            .order_by(volume.desc(), messages.c.conversation_id)
            .limit(limit)
        )
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                rows = await conn.execute(statement)
                return [ConversationVolume(row.conversation_id, row.volume) for row in rows]


def _within(created_at_ms: ColumnElement[int], start_ms: int, end_ms: int) -> ColumnElement[bool]:
    """``[start_ms, end_ms)``: a range scan of the column's index."""
    return (created_at_ms >= start_ms) & (created_at_ms < end_ms)


class SQLRollups(FencedRepo, SQLStatsReader):
    """The rollups' writes (``RollupStore``), each fenced by the task's lease, and their reads (``StatsReader``) for
    the tests and tools that check them."""

    async def checkpoint(self, grain: Grain) -> int | None:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                found = await conn.scalar(
                    select(stats_checkpoints.c.done_until_ms).where(stats_checkpoints.c.grain == grain.value)
                )
        return None if found is None else int(found)

    async def save(
        self,
        activity: Activity,
        top: Sequence[ConversationVolume] | None,
        *,
        computed_at_ms: int,
    ) -> None:
        grain, start = activity.grain.value, activity.start_ms
        row = {
            "grain": grain,
            "start_ms": start,
            "messages": activity.messages,
            "active_senders": activity.active_senders,
            "new_users": activity.new_users,
            "new_conversations": activity.new_conversations,
            "complete": activity.complete,
            "computed_at_ms": computed_at_ms,
        }
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._write() as conn:
                # Replaced, not merged: the row says what the sources hold now, whatever was computed before.
                await conn.execute(
                    delete(stats_activity).where(stats_activity.c.grain == grain, stats_activity.c.start_ms == start)
                )
                await conn.execute(insert(stats_activity).values(row))
                if top is not None:
                    await conn.execute(delete(stats_top_conversations).where(stats_top_conversations.c.day_ms == start))
                    if top:
                        await conn.execute(
                            insert(stats_top_conversations),
                            [
                                {
                                    "day_ms": start,
                                    "place": place,
                                    "conversation_id": volume.conversation_id,
                                    "messages": volume.messages,
                                }
                                for place, volume in enumerate(top, start=1)
                            ],
                        )
                if activity.complete:
                    await self._advance(conn, grain, start + activity.grain.ms)

    async def _advance(self, conn: AsyncConnection, grain: str, done_until_ms: int) -> None:
        """Move ``grain``'s checkpoint forward to ``done_until_ms`` (never back)."""
        current = await conn.scalar(select(stats_checkpoints.c.done_until_ms).where(stats_checkpoints.c.grain == grain))
        if current is None:
            await conn.execute(insert(stats_checkpoints).values(grain=grain, done_until_ms=done_until_ms))
        elif current < done_until_ms:
            await conn.execute(
                update(stats_checkpoints).where(stats_checkpoints.c.grain == grain).values(done_until_ms=done_until_ms)
            )
