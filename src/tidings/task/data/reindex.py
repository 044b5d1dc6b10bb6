"""``SQLIndexSource``: what the reindex task rebuilds the search index from, read from chat's and account's published
tables (key-ordered pages of their primary keys, and of the messages' creation-time index for the recent ones) and
the senders' names through account's published ``display_names``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, literal, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo
from tidings.service.account.store.users import display_names
from tidings.service.account.tables import users
from tidings.service.chat.message import Message
from tidings.service.chat.store.messages import message_from_row
from tidings.service.chat.tables import messages
from tidings.task.biz.errors import Unavailable
from tidings.task.biz.reindex import StoredUser

# Below this many rows (as MySQL estimates them) a table is counted exactly: quick, and a fresh table's estimate
# may still be 0.
EXACT_BELOW = 100_000

_ESTIMATED_ROWS = text(
    "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
).bindparams(bindparam("name"))

_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.conversation_id,
    messages.c.seq,
    messages.c.sender_id,
    messages.c.client_msg_id,
    messages.c.text,
    messages.c.created_at_ms,
    messages.c.recalled,
)
_USER_COLUMNS = (users.c.id, users.c.username, users.c.display_name, users.c.updated_at_ms)


class SQLIndexSource(SQLRepo):
    async def estimate(self) -> int:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await _rows(conn, messages) + await _rows(conn, users)

    async def messages_after(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        m = messages.c
        # Spelled out rather than a row comparison, which MySQL does not turn into a range of the primary key.
        after = or_(m.conversation_id > conversation_id, and_(m.conversation_id == conversation_id, m.seq > seq))
        query = select(*_MESSAGE_COLUMNS).where(after).order_by(m.conversation_id, m.seq).limit(limit)
        return [message_from_row(row) for row in await self._rows(query)]

    async def messages_since(self, since_ms: int, after: tuple[int, ...], limit: int) -> list[Message]:
        m = messages.c
        order = (m.created_at_ms, m.sender_id, m.conversation_id, m.seq)
        query = select(*_MESSAGE_COLUMNS).where(m.created_at_ms >= since_ms)
        if after:
            # The range on created_at_ms comes first: the row comparison only trims the first millisecond.
            query = query.where(m.created_at_ms >= after[0], tuple_(*order) > tuple_(*(literal(v) for v in after)))
        return [message_from_row(row) for row in await self._rows(query.order_by(*order).limit(limit))]

    async def users_after(self, user_id: int, limit: int) -> list[StoredUser]:
        query = select(*_USER_COLUMNS).where(users.c.id > user_id).order_by(users.c.id).limit(limit)
        return [StoredUser(*row) for row in await self._rows(query)]

    async def users_updated_since(self, since_ms: int, user_id: int, limit: int) -> list[StoredUser]:
        # A walk of the primary key (users have no index on updated_at_ms), once per rebuild.
        query = (
            select(*_USER_COLUMNS)
            .where(users.c.id > user_id, users.c.updated_at_ms >= since_ms)
            .order_by(users.c.id)
            .limit(limit)
        )
        return [StoredUser(*row) for row in await self._rows(query)]

    async def sender_names(self, user_ids: Collection[int]) -> dict[int, str]:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await display_names(conn, list(user_ids))

    async def _rows(self, query: Any) -> Sequence[Any]:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return (await conn.execute(query)).all()


async def _rows(conn: AsyncConnection, table: Table) -> int:
    """How many rows ``table`` has: MySQL's estimate for a large table, else a count."""
    if conn.dialect.name in ("mysql", "mariadb"):
        estimated = await conn.scalar(_ESTIMATED_ROWS, {"name": table.name})
        if estimated is not None and int(estimated) >= EXACT_BELOW:
            return int(estimated)
    return int(await conn.scalar(select(func.count()).select_from(table)) or 0)
