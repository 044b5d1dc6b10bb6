"""Consumer group ``persist`` on ``chat.message.sent``: each batch (one worker queue, a conversation's messages
in log order) is stored in one transaction. The consumer commits offsets up to the low watermark of handled records,
so an offset moves only after its transaction committed."""

from __future__ import annotations

from tidings.job.biz.errors import InvalidEvent
from tidings.job.biz.persist import Persister
from tidings.pkg.bus import Record, events
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.message import Message
from tidings.service.chat.store.records import message_from_pb

GROUP = "persist"
TOPIC = chat_topics.MESSAGE_SENT


class PersistHandler:
    def __init__(self, persister: Persister) -> None:
        self._persister = persister

    async def handle(self, records: list[Record]) -> None:
        """The ``OrderedConsumer`` handler: decode all (a bad record fails the batch), then persist them."""
        await self._persister.persist([_decode(record) for record in records])


def _decode(record: Record) -> Message:
    sent = events.decode(TOPIC, record)
    message = sent.message
    if not sent.HasField("message") or min(message.id, message.conversation_id, message.seq) <= 0:
        raise InvalidEvent(f"offset {record.offset}: MessageSent without a message id, conversation or seq")
    if str(message.conversation_id).encode() != record.key:
        raise InvalidEvent(f"offset {record.offset}: key {record.key!r} is not the message's conversation")
    return message_from_pb(message)
