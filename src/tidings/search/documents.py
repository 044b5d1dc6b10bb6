"""A stored message as a search document: the index job (from the events) and the reindex task (from the database)
both index messages this way. Apart from ``model`` because it takes chat's ``Message``: account uses ``model`` too,
and services never import each other."""

from __future__ import annotations

from tidings.search.model import MessageDoc, version_at
from tidings.service.chat.message import Message


def message_doc(message: Message, sender_name: str) -> MessageDoc:
    """The document of a stored message, under its send's version (a recall's tombstone outranks it)."""
    return MessageDoc(
        id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        sender_name=sender_name,
        seq=message.seq,
        created_at_ms=message.created_at_ms,
        text=message.text,
        recalled=message.recalled,
        version=version_at(message.created_at_ms),
    )
