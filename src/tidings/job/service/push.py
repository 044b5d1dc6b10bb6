"""Consumer group ``push`` on chat's message and read events: each batch's events become gateway events for the
devices of the users concerned (``biz.push``)."""

from __future__ import annotations

from collections.abc import Callable

from tidings.api.chat.v1 import events_pb2 as chat_events
from tidings.api.gateway.v1 import gateway_pb2
from tidings.job.biz.errors import InvalidEvent
from tidings.job.biz.push import Push, Pusher
from tidings.pkg.bus import Record, events
from tidings.pkg.bus.consumer import UnknownEventVersion
from tidings.service.chat import topics as chat_topics

GROUP = "push"
TOPICS = (chat_topics.MESSAGE_SENT, chat_topics.MESSAGE_RECALLED, chat_topics.CONVERSATION_READ)

GatewayPush = Push[gateway_pb2.Event]


class PushHandler:
    def __init__(self, pusher: Pusher[gateway_pb2.Event], *, topics: events.Topics | None = None) -> None:
        self._pusher = pusher
        topics = topics or events.Topics()
        self._decoders: dict[str, Callable[[Record], GatewayPush]] = {
            topics.name(chat_topics.MESSAGE_SENT): _message_new,
            topics.name(chat_topics.MESSAGE_RECALLED): _message_recalled,
            topics.name(chat_topics.CONVERSATION_READ): _conversation_read,
        }

    @property
    def topic_names(self) -> list[str]:
        return list(self._decoders)

    async def handle(self, records: list[Record]) -> None:
        """The ``OrderedConsumer`` handler: decode all (a bad record fails the batch), then push them."""
        await self._pusher.push([self._decode(record) for record in records])

    def _decode(self, record: Record) -> GatewayPush:
        decoder = self._decoders.get(record.topic)
        if decoder is None:
            raise UnknownEventVersion(record, f"push does not consume topic {record.topic!r}")
        push = decoder(record)
        if push.conversation_id <= 0:
            raise InvalidEvent(f"{record.topic} offset {record.offset}: no conversation id")
        return push


def _message_new(record: Record) -> GatewayPush:
    message = events.decode(chat_topics.MESSAGE_SENT, record).message
    # The sender's other devices show it too (and the sending one drops it by message id).
    event = gateway_pb2.Event(message_new=gateway_pb2.MessageNew(message=message))
    return Push(message.conversation_id, event, also=message.sender_id)


def _message_recalled(record: Record) -> GatewayPush:
    recalled: chat_events.MessageRecalled = events.decode(chat_topics.MESSAGE_RECALLED, record)
    if recalled.moderation_reason:  # an operator removed it: the members see why
        removed = gateway_pb2.MessageRemoved(
            conversation_id=recalled.conversation_id,
            message_id=recalled.message_id,
            seq=recalled.seq,
            reason=recalled.moderation_reason,
        )
        return Push(recalled.conversation_id, gateway_pb2.Event(message_removed=removed))
    event = gateway_pb2.MessageRecalled(
        conversation_id=recalled.conversation_id, message_id=recalled.message_id, seq=recalled.seq
    )
    return Push(recalled.conversation_id, gateway_pb2.Event(message_recalled=event))


def _conversation_read(record: Record) -> GatewayPush:
    read: chat_events.ConversationRead = events.decode(chat_topics.CONVERSATION_READ, record)
    event = gateway_pb2.ConversationRead(conversation_id=read.conversation_id, user_id=read.user_id, seq=read.seq)
    return Push(read.conversation_id, gateway_pb2.Event(conversation_read=event), reader=read.user_id)
