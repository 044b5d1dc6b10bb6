"""Consumer group ``index`` on chat's sent and recalled messages and account's user updates: each batch goes to the
search index as bulk writes (``biz.index``)."""

from __future__ import annotations

from collections.abc import Callable

from tidings.api.chat.v1 import events_pb2 as chat_events
from tidings.job.biz.errors import InvalidEvent
from tidings.job.biz.index import Indexer, IndexEvent, Recalled, Sent, UserUpdated
from tidings.pkg.bus import Record, events
from tidings.pkg.bus.consumer import UnknownEventVersion
from tidings.pkg.pbtime import millis
from tidings.service.account import topics as account_topics
from tidings.service.chat import topics as chat_topics
from tidings.service.chat.store.records import message_from_pb

GROUP = "index"
TOPICS = (chat_topics.MESSAGE_SENT, chat_topics.MESSAGE_RECALLED, account_topics.USER_UPDATED)


class IndexHandler:
    def __init__(self, indexer: Indexer, *, topics: events.Topics | None = None) -> None:
        self._indexer = indexer
        topics = topics or events.Topics()
        self._decoders: dict[str, Callable[[Record], IndexEvent]] = {
            topics.name(chat_topics.MESSAGE_SENT): _sent,
            topics.name(chat_topics.MESSAGE_RECALLED): _recalled,
            topics.name(account_topics.USER_UPDATED): _user_updated,
        }

    @property
    def topic_names(self) -> list[str]:
        return list(self._decoders)

    async def handle(self, records: list[Record]) -> None:
        """The ``OrderedConsumer`` handler: decode all (a bad record fails the batch), then index them."""
        await self._indexer.index([self._decode(record) for record in records])

    def _decode(self, record: Record) -> IndexEvent:
        decoder = self._decoders.get(record.topic)
        if decoder is None:
            raise UnknownEventVersion(record, f"index does not consume topic {record.topic!r}")
        return decoder(record)


def _sent(record: Record) -> Sent:
    sent = events.decode(chat_topics.MESSAGE_SENT, record)
    message = sent.message
    if not sent.HasField("message") or min(message.id, message.conversation_id, message.seq) <= 0:
        raise InvalidEvent(f"offset {record.offset}: MessageSent without a message id, conversation or seq")
    return Sent(message_from_pb(message))


def _recalled(record: Record) -> Recalled:
    recalled: chat_events.MessageRecalled = events.decode(chat_topics.MESSAGE_RECALLED, record)
    if min(recalled.message_id, recalled.conversation_id) <= 0 or not recalled.HasField("recalled_at"):
        raise InvalidEvent(f"offset {record.offset}: MessageRecalled without a message, conversation or time")
    return Recalled(recalled.message_id, recalled.conversation_id, recalled.seq, millis(recalled.recalled_at))


def _user_updated(record: Record) -> UserUpdated:
    updated = events.decode(account_topics.USER_UPDATED, record)
    user = updated.user
    if not updated.HasField("user") or user.id <= 0 or not updated.HasField("updated_at"):
        raise InvalidEvent(f"offset {record.offset}: UserUpdated without a user id or time")
    return UserUpdated(user.id, user.username, user.display_name, millis(updated.updated_at))
