"""Pruning of send reservations: the dedup rows of messages that are stored and past their retry window. A retry
after that finds the stored message itself (``SQLDedupStore`` looks it up by ``(sender_id, client_msg_id)``), so the
row has nothing left to answer. The task module's ``reservations`` task runs it; chat owns the rule."""

from __future__ import annotations

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.service.chat.tables import message_reservations as reservations
from tidings.service.chat.tables import messages

_prunable = reservations.join(messages, messages.c.id == reservations.c.message_id)


async def prune_reservations(conn: AsyncConnection, before_ms: int, limit: int) -> int:
    """Delete up to ``limit`` reservations created before ``before_ms`` whose messages are stored; how many."""
    keys = [
        (row.sender_id, row.client_msg_id)
        for row in await conn.execute(
            select(reservations.c.sender_id, reservations.c.client_msg_id)
            .select_from(_prunable)
            .where(reservations.c.created_at_ms < before_ms)
            .limit(limit)
        )
    ]
    if not keys:
        return 0
    result = await conn.execute(
        delete(reservations).where(tuple_(reservations.c.sender_id, reservations.c.client_msg_id).in_(keys))
    )
    return int(result.rowcount)


async def count_prunable_reservations(conn: AsyncConnection, before_ms: int) -> int:
    """How many reservations ``prune_reservations`` would delete, in all batches."""
    found = await conn.scalar(
        select(func.count()).select_from(_prunable).where(reservations.c.created_at_ms < before_ms)
    )
    return int(found or 0)
