"""``SQLMessageRepo``: history by seq, recall, and the persist job's idempotent batch write."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Update, and_, bindparam, case, select, update

from tidings.pkg.repo import SQLRepo, chunks, insert_skipping_duplicates
from tidings.service.chat.biz.model import Message
from tidings.service.chat.tables import conversations, messages

# Conversations advanced by one UPDATE at most: three CASE arms each, well below every driver's parameter limit.
_HEADS_CHUNK = 200


@functools.lru_cache(maxsize=_HEADS_CHUNK)
def _advance_heads(count: int) -> Update:
    """Move ``count`` conversations' ``last_message_id``, ``max_seq`` and ``updated_at_ms`` forward to their newest
    message of a batch (never back), all in one statement; parameters ``c<i>``, ``seq<i>``, ``id<i>``, ``at<i>``
    (``_heads_params``). Built once per count: constructing and keying a statement of hundreds of CASE arms cost
    the persist job more than running it."""
    c = conversations.c
    slots = range(count)

    def param(name: str, i: int, column: Any) -> Any:
        return bindparam(f"{name}{i}", type_=column.type)

    def forward(column: Any, value: str, newer: Callable[[int], Any]) -> Any:
        arms = ((and_(c.id == param("c", i, c.id), newer(i)), param(value, i, column)) for i in slots)
        return case(*arms, else_=column)

    def ahead(i: int) -> Any:
        return c.max_seq < param("seq", i, c.max_seq)

    # Ordered: MySQL evaluates SET left to right with the updated values, SQLite with the old ones; putting
    # max_seq last makes both compare against the old max_seq.
    return (
        update(conversations)
        .where(c.id.in_([param("c", i, c.id) for i in slots]))
        .ordered_values(
            (c.last_message_id, forward(c.last_message_id, "id", ahead)),
            (
                c.updated_at_ms,
                forward(c.updated_at_ms, "at", lambda i: c.updated_at_ms < param("at", i, c.updated_at_ms)),
            ),
            (c.max_seq, forward(c.max_seq, "seq", ahead)),
        )
    )


def _heads_params(newest: Sequence[Message]) -> dict[str, int]:
    params: dict[str, int] = {}
    for i, m in enumerate(newest):
        params.update({f"c{i}": m.conversation_id, f"seq{i}": m.seq, f"id{i}": m.id, f"at{i}": m.created_at_ms})
    return params


def message_from_row(row: Any) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        client_msg_id=row.client_msg_id,
        text=row.text,
        created_at_ms=row.created_at_ms,
        recalled=bool(row.recalled),
    )


class SQLMessageRepo(SQLRepo):
    async def after(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        query = (
            select(messages)
            .where(messages.c.conversation_id == conversation_id, messages.c.seq > seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        async with self._read() as conn:
            return [message_from_row(row) for row in await conn.execute(query)]

    async def before(self, conversation_id: int, seq: int | None, limit: int) -> list[Message]:
        query = select(messages).where(messages.c.conversation_id == conversation_id)
        if seq is not None:
            query = query.where(messages.c.seq < seq)
        async with self._read() as conn:
            rows = await conn.execute(query.order_by(messages.c.seq.desc()).limit(limit))
            newest_first = [message_from_row(row) for row in rows]
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
        found: dict[int, Message] = {}
        async with self._read() as conn:
            for chunk in chunks(list(message_ids)):
                rows = await conn.execute(select(messages).where(messages.c.id.in_(chunk)))
                found.update((row.id, message_from_row(row)) for row in rows)
        return found

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

    async def persist(self, batch: Sequence[Message]) -> None:
        """Store ``batch`` and advance each conversation's ``max_seq``, ``last_message_id`` and ``updated_at_ms``,
        all in one transaction. Idempotent: a message already stored (same ``(conversation_id, seq)`` or
        ``message_id``) is left as it is, and the conversation only ever moves forward."""
        if not batch:
            return
        newest: dict[int, Message] = {}
        for message in batch:
            if message.conversation_id not in newest or message.seq > newest[message.conversation_id].seq:
                newest[message.conversation_id] = message
        async with self._write() as conn:
            await conn.execute(
                insert_skipping_duplicates(conn.dialect, messages, "seq"),
                [
                    {
                        "conversation_id": message.conversation_id,
                        "seq": message.seq,
                        "id": message.id,
                        "sender_id": message.sender_id,
                        "client_msg_id": message.client_msg_id,
                        "text": message.text,
                        "created_at_ms": message.created_at_ms,
                        "recalled": message.recalled,
                    }
                    for message in batch
                ],
            )
            # One statement per chunk of conversations, whatever their number; its IN list locks their rows in
            # index order, so concurrent batches cannot deadlock.
            for chunk in chunks(sorted(newest), _HEADS_CHUNK):
                heads = [newest[conversation_id] for conversation_id in chunk]
                await conn.execute(_advance_heads(len(heads)), _heads_params(heads))
