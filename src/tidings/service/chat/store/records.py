"""A message as the store takes it, and its one wire form (``tidings.chat.v1.Message``).

Chat's ``Message`` and its jobs' own message type both fit ``MessageRecord``; the API, the ``MessageSent`` event
and the recent window all carry ``message_to_pb``'s form.
"""

from __future__ import annotations

from typing import Protocol

from tidings.api.chat.v1 import chat_pb2
from tidings.pkg.pbtime import timestamp


class MessageRecord(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def conversation_id(self) -> int: ...

    @property
    def seq(self) -> int: ...

    @property
    def sender_id(self) -> int: ...

    @property
    def client_msg_id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def created_at_ms(self) -> int: ...

    @property
    def recalled(self) -> bool: ...


def message_to_pb(message: MessageRecord) -> chat_pb2.Message:
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
