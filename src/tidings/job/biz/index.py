"""The search index follows the events: a sent message is indexed with its sender's name, a recall leaves a
tombstone, and a user's update re-indexes the user and stores their name in their messages.

Every write carries the event's time as its external version (``tidings.search.model``), so the job needs no
order between events: a replay or an event late from another partition never overwrites a newer document, and a
replayed send never brings a recalled message back. A batch is written as one bulk request per kind of document;
an index that does not answer raises ``SearchUnavailable``, which the consumer retries without end (the index
catches up when it returns), and a document it refuses fails the batch, so the consumer retries each record alone
and dead-letters the one at fault.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidings.search.documents import message_doc
from tidings.search.model import Recall, SearchWriter, UserDoc, version_at
from tidings.service.chat.message import Message


class SenderNames(Protocol):
    async def names(self, user_ids: Collection[int]) -> dict[int, str]:
        """The display names of the users that exist among ``user_ids``; ``Unavailable`` on failure."""


@dataclass(frozen=True)
class Sent:
    message: Message


@dataclass(frozen=True)
class Recalled:
    message_id: int
    conversation_id: int
    seq: int
    at_ms: int


@dataclass(frozen=True)
class UserUpdated:
    user_id: int
    username: str
    display_name: str
    at_ms: int


IndexEvent = Sent | Recalled | UserUpdated


class Indexer:
    def __init__(self, index: SearchWriter, senders: SenderNames) -> None:
        self._index = index
        self._senders = senders

    async def index(self, batch: Sequence[IndexEvent]) -> None:
        sent = [event.message for event in batch if isinstance(event, Sent)]
        recalled = [event for event in batch if isinstance(event, Recalled)]
        # One user's last update of the batch is the one that counts (their records come in order).
        users = {event.user_id: event for event in batch if isinstance(event, UserUpdated)}
        if sent:
            names = await self._senders.names({message.sender_id for message in sent})
            # A sender unknown to account (deleted) is indexed without a name rather than not at all.
            await self._index.index_messages([message_doc(m, names.get(m.sender_id, "")) for m in sent])
        if recalled:
            await self._index.recall_messages(
                [Recall(e.message_id, e.conversation_id, e.seq, version_at(e.at_ms)) for e in recalled]
            )
        if users:
            await self._index.index_users(
                [UserDoc(u.user_id, u.username, u.display_name, version_at(u.at_ms)) for u in users.values()]
            )
            # After the messages above: a message indexed with the name read before a rename gets the new one.
            # A user whose name did not change has no message to update, which costs one query.
            for user in users.values():
                await self._index.rename_sender(user.user_id, user.display_name)
