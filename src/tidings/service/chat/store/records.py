"""A message's one wire form (``tidings.chat.v1.Message``), both ways: the API, the ``MessageSent`` event and the
recent window all carry it; chat, its jobs and the bff all read it back with ``message_from_pb``."""

from __future__ import annotations

from tidings.api.chat.v1 import chat_pb2
from tidings.pkg.pbtime import millis, timestamp
from tidings.service.chat.message import Message


def message_to_pb(message: Message) -> chat_pb2.Message:
    return chat_pb2.Message(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        text=message.text,
        created_at=timestamp(message.created_at_ms),
        recalled=message.recalled,
    )


def message_from_pb(message: chat_pb2.Message) -> Message:
    return Message(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        text=message.text,
        created_at_ms=millis(message.created_at),
        recalled=message.recalled,
    )
