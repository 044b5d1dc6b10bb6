"""The persist write: a batch of messages stored once and each conversation's head moved forward, in the caller's
transaction. Chat's message repository and the persist job both run it, so there is one such write. And a row read
back as a ``Message``, for chat's reads and the reindex task's."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Update, and_, bindparam, case, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.pkg.repo import chunks, insert_skipping_duplicates
from tidings.service.chat.message import Message
from tidings.service.chat.tables import conversations, messages

# Conversations advanced by one UPDATE at most: three CASE arms each, well below every driver's parameter limit.
_HEADS_CHUNK = 200


def message_from_row(row: Any) -> Message:
    """A row of ``messages`` as chat's ``Message``."""
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


async def write_messages(conn: AsyncConnection, batch: Sequence[Message]) -> None:
    """Store ``batch`` and advance each conversation's ``max_seq``, ``last_message_id`` and ``updated_at_ms`` on
    ``conn`` (one transaction). Idempotent: a message already stored (same ``(conversation_id, seq)`` or
    ``message_id``) is left as it is, and the conversation only ever moves forward."""
    if not batch:
        return
    newest: dict[int, Message] = {}
    for message in batch:
        if message.conversation_id not in newest or message.seq > newest[message.conversation_id].seq:
            newest[message.conversation_id] = message
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
    # One statement per chunk of conversations, whatever their number; its IN list locks their rows in index
    # order, so concurrent batches cannot deadlock.
    for chunk in chunks(sorted(newest), _HEADS_CHUNK):
        heads = [newest[conversation_id] for conversation_id in chunk]
        await conn.execute(_advance_heads(len(heads)), _heads_params(heads))
