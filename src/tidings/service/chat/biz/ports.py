"""What the chat use cases need from the outside world; ``data/`` implements each (SQL, Redis, bus, account)."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidings.service.chat.biz.model import Conversation, ConversationState, Cursor, Member, MessageCounts, Role
from tidings.service.chat.message import Message

# Dedup is per sender: (sender_id, client_msg_id).
DedupKey = tuple[int, str]


class DirectExists(Exception):
    """The store refused a second direct conversation for a pair: ``conversation_id`` is the one that exists."""

    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"direct conversation {conversation_id} exists")
        self.conversation_id = conversation_id


class GroupFull(Exception):
    """Adding the members would take the group past its member limit; nothing was added."""


class ConversationRepo(Protocol):
    async def create(
        self, conversation: Conversation, members: Sequence[Member], pair: tuple[int, int] | None = None
    ) -> None:
        """Store a conversation with its members at once; for a direct one ``pair`` is unique (``DirectExists``)."""

    async def find_direct(self, pair: tuple[int, int]) -> int | None: ...

    async def get(self, conversation_id: int) -> Conversation | None:
        """The conversation; ``None`` if unknown or deleted."""

    async def get_many(self, conversation_ids: Sequence[int]) -> dict[int, Conversation]:
        """``get`` for many: unknown and deleted ones are left out."""

    async def member(self, conversation_id: int, user_id: int) -> Member | None:
        """The membership, former (``active=False``) or current, or ``None`` if the user never was one."""

    async def member_ids(self, conversation_ids: Sequence[int]) -> dict[int, list[int]]:
        """The current members of each conversation, in one round trip."""

    async def list_members(self, conversation_id: int) -> list[Member]:
        """The current members of a conversation, longest-standing first (then by user id)."""

    async def list_for_user(self, user_id: int, limit: int, after: Cursor | None) -> list[tuple[Conversation, Member]]:
        """The user's conversations by ``(updated_at_ms, id)`` descending, starting after ``after``."""

    async def states(self, user_id: int, conversation_ids: Sequence[int] | None) -> list[ConversationState]:
        """The user's state in each of ``conversation_ids`` they are a member of (all theirs for ``None``)."""

    async def add_members(
        self, conversation_id: int, user_ids: Sequence[int], role: Role, now_ms: int, max_members: int
    ) -> int:
        """Add (or bring back) members, skipping current ones; how many joined. ``GroupFull`` adds nobody."""

    async def remove_member(self, conversation_id: int, user_id: int, now_ms: int) -> bool:
        """Make a member a former member; ``False`` if they were not a current one. A leaving owner hands the group
        on: its longest-standing current member (then the lowest user id) becomes the owner."""

    async def mark_read(self, conversation_id: int, user_id: int, seq: int) -> int:
        """Move a current member's read mark to ``seq`` if that is forward (never back); the mark afterwards."""

    async def delete(self, conversation_id: int, now_ms: int) -> list[int] | None:
        """Delete a conversation: marked deleted (``get`` no longer finds it) and every membership, current or
        former, removed; the users who had one (whose cached views of it are stale now), or ``None`` if there
        was no such conversation. Its messages stay stored, unserved."""


class MessageRepo(Protocol):
    async def after(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        """Up to ``limit`` messages with seq > ``seq``, ascending."""

    async def before(self, conversation_id: int, seq: int | None, limit: int) -> list[Message]:
        """The newest ``limit`` messages with seq < ``seq`` (any seq for ``None``), ascending."""

    async def get(self, conversation_id: int, message_id: int) -> Message | None: ...

    async def get_many(self, message_ids: Sequence[int]) -> dict[int, Message]: ...

    async def recall(self, conversation_id: int, message_id: int) -> Message | None:
        """Mark the message recalled and erase its text (idempotent); ``None`` if there is no such message."""

    async def counts(self, conversation_id: int) -> MessageCounts:
        """How many messages of the conversation are stored, and how many are recalled, in one query."""


class SeqAllocator(Protocol):
    """Hands out per-conversation seqs: strictly increasing, never reused (gaps allowed), also across restarts."""

    async def allocate(self, conversation_id: int, count: int) -> list[int]:
        """``count`` new seqs of the conversation, ascending, each higher than any handed out before."""

    async def allocate_many(self, counts: Mapping[int, int]) -> dict[int, list[int]]:
        """``allocate`` for several conversations at once (conversation id -> count), in as few round trips as
        it can."""


@dataclass(frozen=True)
class Reservation:
    """The durable claim of one ``(sender_id, client_msg_id)``: the message it stands for, and its outcome.

    ``sent`` once the bus acknowledged the message. Until then the claim belongs to whoever holds its lease
    (``lease_until_ms``); a retry may take the claim over after that and publish the *same* message again.
    """

    message: Message
    sent: bool
    lease_until_ms: int

    @property
    def key(self) -> DedupKey:
        return (self.message.sender_id, self.message.client_msg_id)


class DedupStore(Protocol):
    """Reservations of client message ids, durable across restarts; the unique key makes races safe."""

    async def get_many(self, keys: Sequence[DedupKey]) -> dict[DedupKey, Reservation]:
        """The reservations of ``keys``; ``sent`` when marked so or when their message is stored."""

    async def reserve(self, reservations: Sequence[Reservation]) -> set[DedupKey]:
        """Insert the reservations; the keys that were free (ours now). Taken keys are left as they are."""

    async def complete(self, keys: Sequence[DedupKey]) -> None:
        """Mark the messages sent: the bus has them (after a take-over, whose message may not be stored yet)."""

    async def release(self, keys: Sequence[DedupKey]) -> None:
        """Give up the leases of unsent reservations at once, so a retry need not wait for them to expire."""

    async def take_over(self, reservation: Reservation, lease_until_ms: int) -> bool:
        """Claim an unsent reservation whose lease is still ``reservation.lease_until_ms``: one caller wins."""


class UserDirectory(Protocol):
    """The account service, as chat needs it."""

    async def existing(self, user_ids: Sequence[int]) -> set[int]:
        """The ids among ``user_ids`` that belong to existing users."""

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        """For each pair, in order, whether either user blocked the other (one call however many)."""


class EventPublisher(Protocol):
    """Puts chat's events on the bus; each call returns once the bus has them durably."""

    async def message_sent(self, messages: Sequence[tuple[Message, contextvars.Context]]) -> None:
        """Publish in order, in one round trip; each event's trace context is taken from the context beside it."""

    async def message_recalled(self, message: Message, recalled_by: int, at_ms: int, moderation_reason: str) -> None:
        """``moderation_reason`` is empty unless an operator removed the message."""

    async def conversation_read(self, conversation_id: int, user_id: int, seq: int, at_ms: int) -> None: ...


class HistoryCache(Protocol):
    """Caches derived from history (the recent-messages window): dropped when a message changes."""

    async def forget(self, conversation_id: int) -> None: ...


class IdGen(Protocol):
    def next_id(self) -> int: ...
