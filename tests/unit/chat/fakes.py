"""In-memory fakes of the chat ports, for fast use-case tests. Each awaits once, so that concurrent calls
interleave as they would on real I/O and races are exercised, not hidden. The stores keep the contracts the SQL
and Redis adapters keep (test_stores.py runs them on both)."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from prometheus_client import CollectorRegistry

from tidings.pkg import log
from tidings.pkg.cache import CacheMetrics, CachePolicy, LocalInvalidator, MemoryStore
from tidings.pkg.cache.kit import CacheKit
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.conversations import Conversations
from tidings.service.chat.biz.messages import Messages
from tidings.service.chat.biz.model import (
    Conversation,
    ConversationState,
    Cursor,
    Kind,
    Member,
    MessageCounts,
    Role,
)
from tidings.service.chat.biz.ports import DedupKey, DirectExists, GroupFull, Reservation
from tidings.service.chat.biz.sending import Sender, SendPolicy
from tidings.service.chat.data.caches import chat_caches
from tidings.service.chat.message import Message


async def _io() -> None:
    await asyncio.sleep(0)


class FakeClock:
    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now = now_ms
        self.mono = 1000.0

    def now_ms(self) -> int:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, ms: int) -> None:
        self.now += ms
        self.mono += ms / 1000


class FakeIds:
    def __init__(self) -> None:
        self._next = itertools.count(10_000)

    def next_id(self) -> int:
        return next(self._next)


class FakeConversations:
    def __init__(self) -> None:
        self.conversations: dict[int, Conversation] = {}
        self.members: dict[tuple[int, int], Member] = {}
        self.pairs: dict[tuple[int, int], int] = {}
        # Deleted conversations keep their record here (the SQL store keeps the row, marked).
        self.deleted: dict[int, Conversation] = {}

    async def create(
        self, conversation: Conversation, new_members: Sequence[Member], pair: tuple[int, int] | None = None
    ) -> None:
        await _io()
        if pair is not None:
            if pair in self.pairs:
                raise DirectExists(self.pairs[pair])
            self.pairs[pair] = conversation.id
        self.conversations[conversation.id] = conversation
        for member in new_members:
            self.members[(conversation.id, member.user_id)] = member

    async def find_direct(self, pair: tuple[int, int]) -> int | None:
        await _io()
        return self.pairs.get(pair)

    async def get(self, conversation_id: int) -> Conversation | None:
        await _io()
        return self.conversations.get(conversation_id)

    async def get_many(self, conversation_ids: Sequence[int]) -> dict[int, Conversation]:
        await _io()
        return {i: self.conversations[i] for i in conversation_ids if i in self.conversations}

    async def member(self, conversation_id: int, user_id: int) -> Member | None:
        await _io()
        return self.members.get((conversation_id, user_id))

    async def member_ids(self, conversation_ids: Sequence[int]) -> dict[int, list[int]]:
        await _io()
        return {
            cid: sorted(m.user_id for (c, _), m in self.members.items() if c == cid and m.active)
            for cid in conversation_ids
        }

    async def list_members(self, conversation_id: int) -> list[Member]:
        await _io()
        current = [m for (c, _), m in self.members.items() if c == conversation_id and m.active]
        return sorted(current, key=lambda m: (m.joined_at_ms, m.user_id))

    async def delete(self, conversation_id: int, now_ms: int) -> list[int] | None:
        await _io()
        conversation = self.conversations.pop(conversation_id, None)
        if conversation is None:
            return None
        self.deleted[conversation_id] = replace(conversation, member_count=0)
        had = sorted(u for (c, u) in self.members if c == conversation_id)
        for user in had:
            del self.members[(conversation_id, user)]
        return had

    async def kinds_and_members(self, conversation_ids: Sequence[int]) -> dict[int, tuple[Kind, list[int]]]:
        current = await self.member_ids([cid for cid in conversation_ids if cid in self.conversations])
        return {cid: (self.conversations[cid].kind, members) for cid, members in current.items()}

    async def list_for_user(self, user_id: int, limit: int, after: Cursor | None) -> list[tuple[Conversation, Member]]:
        await _io()
        rows = [
            (self.conversations[cid], member)
            for (cid, uid), member in self.members.items()
            if uid == user_id and member.active
        ]
        rows.sort(key=lambda row: (row[0].updated_at_ms, row[0].id), reverse=True)
        if after is not None:
            rows = [r for r in rows if (r[0].updated_at_ms, r[0].id) < (after.updated_at_ms, after.conversation_id)]
        return rows[:limit]

    async def states(self, user_id: int, conversation_ids: Sequence[int] | None) -> list[ConversationState]:
        await _io()
        ids = conversation_ids if conversation_ids is not None else [c for (c, u) in self.members if u == user_id]
        states = []
        for cid in ids:
            member = self.members.get((cid, user_id))
            if member is not None and member.active:
                conversation = self.conversations[cid]
                states.append(ConversationState(cid, conversation.max_seq, member.read_seq, conversation.updated_at_ms))
        return states

    async def add_members(
        self, conversation_id: int, user_ids: Sequence[int], role: Role, now_ms: int, max_members: int
    ) -> int:
        await _io()
        joining = [u for u in user_ids if not (m := self.members.get((conversation_id, u))) or not m.active]
        conversation = self.conversations[conversation_id]
        if conversation.member_count + len(joining) > max_members:
            raise GroupFull()
        for user in joining:
            old = self.members.get((conversation_id, user))
            read_seq = old.read_seq if old else 0
            self.members[(conversation_id, user)] = Member(conversation_id, user, role, read_seq, now_ms)
        self.conversations[conversation_id] = replace(
            conversation, member_count=conversation.member_count + len(joining)
        )
        return len(joining)

    async def remove_member(self, conversation_id: int, user_id: int, now_ms: int) -> bool:
        await _io()
        member = self.members.get((conversation_id, user_id))
        if member is None or not member.active:
            return False
        self.members[(conversation_id, user_id)] = replace(member, active=False, role=Role.MEMBER)
        conversation = self.conversations[conversation_id]
        conversation = replace(conversation, member_count=conversation.member_count - 1)
        if conversation.owner_id == user_id:
            staying = [m for (cid, _), m in self.members.items() if cid == conversation_id and m.active]
            heir = min(staying, key=lambda m: (m.joined_at_ms, m.user_id), default=None)
            conversation = replace(conversation, owner_id=heir.user_id if heir else 0)
            if heir is not None:
                self.members[(conversation_id, heir.user_id)] = replace(heir, role=Role.OWNER)
        self.conversations[conversation_id] = conversation
        return True

    async def mark_read(self, conversation_id: int, user_id: int, seq: int) -> int:
        await _io()
        member = self.members[(conversation_id, user_id)]
        if member.active and member.read_seq < seq:
            member = replace(member, read_seq=seq)
            self.members[(conversation_id, user_id)] = member
        return member.read_seq


class FakeMessages:
    """The history; ``persist`` moves the conversations' heads in ``conversations`` as the SQL store does."""

    def __init__(self, conversations: FakeConversations) -> None:
        self.stored: dict[tuple[int, int], Message] = {}
        self._conversations = conversations

    def has(self, message_id: int) -> bool:
        return any(message.id == message_id for message in self.stored.values())

    async def persist(self, batch: Sequence[Message]) -> None:
        await _io()
        newest: dict[int, Message] = {}
        for message in batch:
            if (message.conversation_id, message.seq) not in self.stored and not self.has(message.id):
                self.stored[(message.conversation_id, message.seq)] = message
            if message.conversation_id not in newest or message.seq > newest[message.conversation_id].seq:
                newest[message.conversation_id] = message
        heads = self._conversations.conversations
        for cid, message in newest.items():
            if (conversation := heads.get(cid)) is None:
                continue
            if message.seq > conversation.max_seq:
                conversation = replace(conversation, max_seq=message.seq, last_message_id=message.id)
            if message.created_at_ms > conversation.updated_at_ms:
                conversation = replace(conversation, updated_at_ms=message.created_at_ms)
            heads[cid] = conversation

    async def after(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        await _io()
        rows = sorted((m for (c, s), m in self.stored.items() if c == conversation_id and s > seq), key=_seq)
        return rows[:limit]

    async def before(self, conversation_id: int, seq: int | None, limit: int) -> list[Message]:
        await _io()
        rows = sorted(
            (m for (c, s), m in self.stored.items() if c == conversation_id and (seq is None or s < seq)), key=_seq
        )
        return rows[-limit:] if limit else []

    async def get(self, conversation_id: int, message_id: int) -> Message | None:
        await _io()
        return next(
            (m for m in self.stored.values() if m.id == message_id and m.conversation_id == conversation_id), None
        )

    async def get_many(self, message_ids: Sequence[int]) -> dict[int, Message]:
        await _io()
        return {m.id: m for m in self.stored.values() if m.id in set(message_ids)}

    async def recall(self, conversation_id: int, message_id: int) -> Message | None:
        message = await self.get(conversation_id, message_id)
        if message is None:
            return None
        recalled = replace(message, recalled=True, text="")
        self.stored[(conversation_id, message.seq)] = recalled
        return recalled

    async def counts(self, conversation_id: int) -> MessageCounts:
        await _io()
        mine = [m for (c, _), m in self.stored.items() if c == conversation_id]
        return MessageCounts(len(mine), sum(m.recalled for m in mine))


def _seq(message: Message) -> int:
    return message.seq


class FakeSeqs:
    """Strictly increasing per conversation of ``conversations``, shared by every Sender given the same instance
    (one allocator)."""

    def __init__(self, conversations: FakeConversations) -> None:
        self.last: dict[int, int] = {}
        self.fail = False
        self._conversations = conversations

    async def allocate(self, conversation_id: int, count: int) -> list[int]:
        await _io()
        if self.fail:
            raise ConnectionError("seq store down")
        if conversation_id not in self._conversations.conversations:
            raise LookupError(f"conversation {conversation_id} does not exist")
        first = self.last.get(conversation_id, 0) + 1
        self.last[conversation_id] = first + count - 1
        return list(range(first, first + count))

    async def allocate_many(self, counts: Mapping[int, int]) -> dict[int, list[int]]:
        return {cid: await self.allocate(cid, count) for cid, count in counts.items()}


class FakeDedup:
    def __init__(self) -> None:
        self.rows: dict[DedupKey, Reservation] = {}
        # The stored messages (the persist job's side); the World points it at its bus log.
        self.stored: Callable[[], Iterable[Message]] = lambda: ()

    def _stored_by_key(self) -> dict[DedupKey, Message]:
        return {(m.sender_id, m.client_msg_id): m for m in self.stored()}

    async def get_many(self, keys: Sequence[DedupKey]) -> dict[DedupKey, Reservation]:
        await _io()
        stored = self._stored_by_key()
        stored_ids = {m.id for m in stored.values()}
        found: dict[DedupKey, Reservation] = {}
        for key in keys:
            if key in self.rows:
                row = self.rows[key]
                found[key] = replace(row, sent=True) if row.message.id in stored_ids else row
            elif key in stored:  # pruned: the stored message answers
                found[key] = Reservation(stored[key], sent=True, lease_until_ms=0)
        return found

    async def reserve(self, reservations: Sequence[Reservation]) -> set[DedupKey]:
        await _io()
        stored = self._stored_by_key()
        ours = set()
        for reservation in reservations:
            if reservation.key not in self.rows and reservation.key not in stored:
                self.rows[reservation.key] = reservation
                ours.add(reservation.key)
        return ours

    async def prune(self, before_ms: int, limit: int) -> int:
        """What ``chat.store.reservations.prune_reservations`` does to the SQL table."""
        stored_ids = {m.id for m in self.stored()}
        keys = [k for k, r in self.rows.items() if r.message.created_at_ms < before_ms and r.message.id in stored_ids]
        for key in keys[:limit]:
            del self.rows[key]
        return len(keys[:limit])

    async def complete(self, keys: Sequence[DedupKey]) -> None:
        await _io()
        for key in keys:
            self.rows[key] = replace(self.rows[key], sent=True)

    async def release(self, keys: Sequence[DedupKey]) -> None:
        await _io()
        for key in keys:
            if not self.rows[key].sent:
                self.rows[key] = replace(self.rows[key], lease_until_ms=0)

    async def take_over(self, reservation: Reservation, lease_until_ms: int) -> bool:
        await _io()
        current = self.rows[reservation.key]
        if current.sent or current.lease_until_ms != reservation.lease_until_ms:
            return False
        self.rows[reservation.key] = replace(current, lease_until_ms=lease_until_ms)
        return True


class FakeDirectory:
    def __init__(self, users: set[int] | None = None) -> None:
        self.users = set(users or ())
        self.blocks: set[tuple[int, int]] = set()
        self.block_checks = 0

    async def existing(self, user_ids: Sequence[int]) -> set[int]:
        await _io()
        return {user for user in user_ids if user in self.users}

    async def blocked_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[bool]:
        await _io()
        self.block_checks += len(pairs)
        return [(a, b) in self.blocks or (b, a) in self.blocks for a, b in pairs]


@dataclass
class Published:
    kind: str
    payload: object


class FakePublisher:
    """The bus: ``log`` holds what was acknowledged, in order. ``failures`` makes that many publishes fail;
    ``hold`` (when set) keeps publishes waiting until it is released."""

    def __init__(self) -> None:
        self.log: list[Message] = []
        self.events: list[Published] = []
        self.failures = 0
        self.hold: asyncio.Event | None = None
        self.attempts = 0

    async def message_sent(self, messages: Sequence[tuple[Message, contextvars.Context]]) -> None:
        self.attempts += 1
        await _io()
        if self.hold is not None:
            await self.hold.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("bus down")
        self.log.extend(message for message, _ in messages)

    async def message_recalled(self, message: Message, recalled_by: int, at_ms: int, moderation_reason: str) -> None:
        await _io()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("bus down")
        self.events.append(Published("recalled", (message.id, recalled_by, moderation_reason)))

    async def conversation_read(self, conversation_id: int, user_id: int, seq: int, at_ms: int) -> None:
        await _io()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("bus down")
        self.events.append(Published("read", (conversation_id, user_id, seq)))


class FakeHistoryCache:
    def __init__(self) -> None:
        self.forgotten: list[int] = []

    async def forget(self, conversation_id: int) -> None:
        self.forgotten.append(conversation_id)


@dataclass
class World:
    """The chat use cases on fakes; ``persist()`` plays the persist job (bus log -> history)."""

    users: set[int] = field(default_factory=lambda: set(range(1, 101)))
    clock: FakeClock = field(default_factory=FakeClock)
    ids: FakeIds = field(default_factory=FakeIds)
    conversations: FakeConversations = field(default_factory=FakeConversations)
    messages: FakeMessages = field(init=False)
    seqs: FakeSeqs = field(init=False)
    dedup: FakeDedup = field(default_factory=FakeDedup)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    history_cache: FakeHistoryCache = field(default_factory=FakeHistoryCache)
    policy: SendPolicy = field(default_factory=lambda: SendPolicy(poll_interval_s=0.001))

    def __post_init__(self) -> None:
        self.messages = FakeMessages(self.conversations)
        self.seqs = FakeSeqs(self.conversations)
        # What the bus has, the persist job stores: a reservation counts as sent once its message is on the bus.
        self.dedup.stored = lambda: self.publisher.log
        self.directory = FakeDirectory(self.users)
        # The real cache-aside helper on an in-process store, on the fake clock: membership changes must be seen.
        self.cache_store = MemoryStore(clock=self.clock.monotonic)
        kit = CacheKit(
            self.cache_store,
            LocalInvalidator(self.cache_store, delay_s=0.01),
            CacheMetrics(CollectorRegistry(), "chat"),
            CachePolicy(),
            self.clock.monotonic,
        )
        self.caches = chat_caches(kit)
        self.access = Access(self.conversations, self.directory, gates=self.caches.gates, blocks=self.caches.blocks)
        self.sender = self.new_sender()
        self.chats = Conversations(
            self.conversations,
            self.messages,
            self.directory,
            self.access,
            self.ids,
            self.clock,
            log.get("chat.conversations"),
            self.caches.members,
        )
        self.msgs = Messages(
            self.access,
            self.conversations,
            self.messages,
            self.sender,
            self.publisher,
            self.history_cache,
            self.clock,
            log.get("chat.messages"),
        )

    def new_sender(self) -> Sender:
        """Another chat instance's sender: its own pipelines, the same stores and bus."""
        return Sender(
            self.access, self.seqs, self.dedup, self.publisher, self.ids, self.clock, self.policy, log.get("chat.send")
        )

    async def persist(self) -> None:
        """What the persist job does with the bus log."""
        await self.messages.persist(self.publisher.log)
