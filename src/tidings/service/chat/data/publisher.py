"""``BusEventPublisher``: chat's events on the event bus (Kafka or the embedded log), in the shared envelope."""

from __future__ import annotations

import contextvars
from collections.abc import Sequence

from tidings.api.chat.v1 import events_pb2
from tidings.pkg.bus import Publisher, events
from tidings.pkg.pbtime import timestamp
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.message import Message
from tidings.service.chat.store.records import message_to_pb


class BusEventPublisher:
    def __init__(self, bus: Publisher, topics: events.Topics) -> None:
        self._bus = bus
        self._topics = topics

    async def message_sent(self, messages: Sequence[tuple[Message, contextvars.Context]]) -> None:
        # Each envelope is built inside its request's context, so it carries that request's trace.
        batch = [
            context.run(
                events.encode,
                self._topics,
                chat_topics.MESSAGE_SENT,
                events.id_key(message.conversation_id),
                events_pb2.MessageSent(message=message_to_pb(message)),
            )
            for message, context in messages
        ]
        await self._bus.publish_many(batch)

    async def message_recalled(self, message: Message, recalled_by: int, at_ms: int, moderation_reason: str) -> None:
        payload = events_pb2.MessageRecalled(
            conversation_id=message.conversation_id,
            message_id=message.id,
            seq=message.seq,
            recalled_by=recalled_by,
            recalled_at=timestamp(at_ms),
            moderation_reason=moderation_reason,
        )
        key = events.id_key(message.conversation_id)
        await self._bus.publish_many([events.encode(self._topics, chat_topics.MESSAGE_RECALLED, key, payload)])

    async def conversation_read(self, conversation_id: int, user_id: int, seq: int, at_ms: int) -> None:
        payload = events_pb2.ConversationRead(
            conversation_id=conversation_id, user_id=user_id, seq=seq, read_at=timestamp(at_ms)
        )
        key = events.id_key(conversation_id)
        await self._bus.publish_many([events.encode(self._topics, chat_topics.CONVERSATION_READ, key, payload)])
