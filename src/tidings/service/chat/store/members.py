"""Who hears a conversation: its kind and active members, read in one query per chunk of conversations. Chat's
conversation repository and the push job both read it this way."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.pkg.repo import chunks
from tidings.service.chat.tables import conversation_members as members
from tidings.service.chat.tables import conversations


async def kinds_and_members(conn: AsyncConnection, conversation_ids: Sequence[int]) -> dict[int, tuple[int, list[int]]]:
    """Each existing conversation's kind (``tables.KIND_*``) and active member ids (ascending); unknown ids are
    left out."""
    found: dict[int, tuple[int, list[int]]] = {}
    active = and_(members.c.conversation_id == conversations.c.id, members.c.left_at_ms.is_(None))
    for chunk in chunks(list(conversation_ids)):
        rows = await conn.execute(
            select(conversations.c.id, conversations.c.kind, members.c.user_id)
            .select_from(conversations.outerjoin(members, active))
            .where(conversations.c.id.in_(chunk))
            .order_by(conversations.c.id, members.c.user_id)
        )
        for conversation_id, kind, user_id in rows:
            entry = found.setdefault(conversation_id, (int(kind), []))
            if user_id is not None:
                entry[1].append(user_id)
    return found
