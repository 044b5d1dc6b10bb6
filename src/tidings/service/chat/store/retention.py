"""Retention of history: a conversation's oldest messages deleted as a prefix of its seqs, never from the middle, so
its history stays contiguous from the new first seq at every moment (also if the deleting process dies midway).
The task module's ``retention`` task runs it; chat owns the rule."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.service.chat.tables import KIND_DIRECT, KIND_GROUP, conversations, messages

KINDS = {KIND_DIRECT: "direct", KIND_GROUP: "group"}
_KIND_OF = {name: kind for kind, name in KINDS.items()}


async def conversations_after(conn: AsyncConnection, conversation_id: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` conversations with ids above ``conversation_id``, ascending, with their kinds ("direct",
    "group")."""
    rows = await conn.execute(
        select(conversations.c.id, conversations.c.kind)
        .where(conversations.c.id > conversation_id)
        .order_by(conversations.c.id)
        .limit(limit)
    )
    return [(row.id, KINDS[row.kind]) for row in rows]


async def expired_through(conn: AsyncConnection, conversation_id: int, before_ms: int, limit: int) -> int | None:
    """The last seq of the conversation's oldest messages created before ``before_ms``, looking at its first
    ``limit`` messages: the prefix ends at the first message that is not that old (a clock step between two chat
    instances never makes it skip one); ``None`` if the very first is not."""
    rows = await conn.execute(
        select(messages.c.seq, messages.c.created_at_ms)
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.seq)
        .limit(limit)
    )
    through = None
    for seq, created_at_ms in rows:
        if created_at_ms >= before_ms:
            break
        through = seq
    return through


async def delete_through(conn: AsyncConnection, conversation_id: int, seq: int) -> int:
    """Delete the conversation's messages up to ``seq``; how many were deleted."""
    result = await conn.execute(
        delete(messages).where(messages.c.conversation_id == conversation_id, messages.c.seq <= seq)
    )
    return int(result.rowcount)


async def count_older(conn: AsyncConnection, kind: str, before_ms: int) -> int:
    """How many messages of conversations of ``kind`` were created before ``before_ms`` (a range of the messages'
    creation-time index)."""
    found = await conn.scalar(
        select(func.count())
        .select_from(messages.join(conversations, conversations.c.id == messages.c.conversation_id))
        .where(conversations.c.kind == _KIND_OF[kind], messages.c.created_at_ms < before_ms)
    )
    return int(found or 0)
