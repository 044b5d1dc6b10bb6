"""``SQLMessageRepo``: history by seq, recall, counts, and the persist job's idempotent batch write
(``chat.store``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.pkg.repo import SQLRepo, chunks
from tidings.service.chat.biz.model import MessageCounts
from tidings.service.chat.message import Message
from tidings.service.chat.store.messages import message_from_row, write_messages
from tidings.service.chat.tables import messages


class SQLMessageRepo(SQLRepo):
    async def after(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        query = (
            select(messages)
            .where(messages.c.conversation_id == conversation_id, messages.c.seq > seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )

        async def read(conn: AsyncConnection) -> list[Message]:
            return [message_from_row(row) for row in await conn.execute(query)]

        return await self._replica_read(read)

    async def before(self, conversation_id: int, seq: int | None, limit: int) -> list[Message]:
        query = select(messages).where(messages.c.conversation_id == conversation_id)
        if seq is not None:
            query = query.where(messages.c.seq < seq)
        query = query.order_by(messages.c.seq.desc()).limit(limit)

        async def read(conn: AsyncConnection) -> list[Message]:
            return [message_from_row(row) for row in await conn.execute(query)]

        newest_first = await self._replica_read(read)
        return newest_first[::-1]

    async def get(self, conversation_id: int, message_id: int) -> Message | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(messages).where(messages.c.id == message_id, messages.c.conversation_id == conversation_id)
                )
            ).first()
        return message_from_row(row) if row is not None else None

    async def get_many(self, message_ids: Sequence[int]) -> dict[int, Message]:
        async def read(conn: AsyncConnection) -> dict[int, Message]:
            found: dict[int, Message] = {}
            for chunk in chunks(list(message_ids)):
                rows = await conn.execute(select(messages).where(messages.c.id.in_(chunk)))
                found.update((row.id, message_from_row(row)) for row in rows)
            return found

        return await self._replica_read(read)

    async def recall(self, conversation_id: int, message_id: int) -> Message | None:
        async with self._write() as conn:
            await conn.execute(
                update(messages)
                .where(messages.c.id == message_id, messages.c.conversation_id == conversation_id)
                .values(recalled=True, text="")
            )
            row = (
                await conn.execute(
                    select(messages).where(messages.c.id == message_id, messages.c.conversation_id == conversation_id)
                )
            ).first()
        return message_from_row(row) if row is not None else None

    async def counts(self, conversation_id: int) -> MessageCounts:
        # One range scan of the primary key's conversation prefix.
        query = select(
            func.count(), func.coalesce(func.sum(case((messages.c.recalled.is_(True), 1), else_=0)), 0)
        ).where(messages.c.conversation_id == conversation_id)

        async def read(conn: AsyncConnection) -> MessageCounts:
            total, recalled = (await conn.execute(query)).one()
            return MessageCounts(int(total), int(recalled))

        return await self._replica_read(read)

    async def persist(self, batch: Sequence[Message]) -> None:
        """Store a batch the way the persist job does (``store.messages.write_messages``), in one transaction."""
        if not batch:
            return
        async with self._write() as conn:
            await write_messages(conn, batch)
