"""The behaviour every chat store must have; run on the in-memory fakes and SQLite (unit) and on MariaDB
(integration).

A test module provides a ``stores`` fixture: the three stores of one empty database (``ChatStores``), so what a
test writes through one the others see. ``sql_stores`` builds the SQL ones.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.pkg.db import ReadReplica
from tidings.service.chat.biz.model import Conversation, Cursor, Kind, Member, MessageCounts, Role
from tidings.service.chat.biz.ports import (
    ConversationRepo,
    DedupStore,
    DirectExists,
    GroupFull,
    MessageRepo,
    Reservation,
)
from tidings.service.chat.data.conversations import SQLConversationRepo
from tidings.service.chat.data.dedup import SQLDedupStore
from tidings.service.chat.data.messages import SQLMessageRepo
from tidings.service.chat.message import Message
from tidings.service.chat.store.reservations import prune_reservations

NOW = 1_800_000_000_000
_ids = itertools.count(1_000_000)


def new_id() -> int:
    return next(_ids)


def conversation(
    kind: Kind = Kind.GROUP, *, owner: int = 1, members: int = 0, updated_at_ms: int = NOW
) -> Conversation:
    return Conversation(new_id(), kind, "t" if kind is Kind.GROUP else "", owner, 0, None, NOW, updated_at_ms, members)


def message(conversation_id: int, seq: int, *, sender: int = 1, text: str = "hi", at: int = NOW) -> Message:
    return Message(new_id(), conversation_id, seq, sender, f"c-{conversation_id}-{seq}-{new_id()}", text, at)


class ConversationStore(ConversationRepo, Protocol):
    """The conversations as chat keeps them, and as the push job reads who hears a conversation."""

    async def kinds_and_members(self, conversation_ids: Sequence[int]) -> Mapping[int, tuple[Kind, Sequence[int]]]:
        """Each existing conversation's kind and current member ids, ascending."""


class MessageStore(MessageRepo, Protocol):
    """The history as chat reads it, and as the persist job writes it."""

    async def persist(self, batch: Sequence[Message]) -> None:
        """Store ``batch`` (idempotent on ``(conversation_id, seq)`` and on message id) and move each conversation's
        ``max_seq``, ``last_message_id`` and ``updated_at_ms`` forward to its newest message, never back."""


@dataclass(frozen=True)
class ChatStores:
    """Chat's stores on one database."""

    conversations: ConversationStore
    messages: MessageStore
    dedup: DedupStore
    # The task module's pruning of reservations (``chat.store.reservations``): (before_ms, limit) -> pruned.
    prune_reservations: Callable[[int, int], Awaitable[int]]


def sql_stores(
    engine: AsyncEngine, statements: AsyncEngine | None = None, replica: ReadReplica | None = None
) -> ChatStores:
    """The SQL stores on ``engine`` (migrated), with the autocommit engine and the read replica where there are."""

    async def prune(before_ms: int, limit: int) -> int:
        async with engine.begin() as conn:
            return await prune_reservations(conn, before_ms, limit)

    return ChatStores(
        SQLConversationRepo(engine, statements=statements, replica=replica),
        SQLMessageRepo(engine, statements=statements, replica=replica),
        SQLDedupStore(engine, statements=statements),
        prune,
    )


class ConversationRepoContract:
    @pytest.fixture
    def repo(self, stores: ChatStores) -> ConversationStore:
        return stores.conversations

    async def group(self, repo: ConversationRepo, *users: int, updated_at_ms: int = NOW) -> Conversation:
        group = conversation(owner=users[0], members=len(users), updated_at_ms=updated_at_ms)
        roles = [Role.OWNER] + [Role.MEMBER] * (len(users) - 1)
        await repo.create(group, [Member(group.id, u, role, 0, NOW) for u, role in zip(users, roles, strict=True)])
        return group

    async def test_a_created_conversation_reads_back_with_its_members(self, repo: ConversationStore) -> None:
        group = await self.group(repo, 1, 2, 3)
        assert await repo.get(group.id) == group
        assert await repo.get(new_id()) is None
        owner = await repo.member(group.id, 1)
        assert owner == Member(group.id, 1, Role.OWNER, 0, NOW, active=True)
        assert await repo.member(group.id, 4) is None
        other = await self.group(repo, 5)
        assert await repo.member_ids([group.id, other.id]) == {group.id: [1, 2, 3], other.id: [5]}
        assert await repo.get_many([group.id, other.id, new_id()]) == {group.id: group, other.id: other}

    async def test_a_pair_has_one_direct_conversation_even_when_created_concurrently(
        self, repo: ConversationStore
    ) -> None:
        pair = (new_id(), new_id())
        candidates = [conversation(Kind.DIRECT, owner=0, members=2) for _ in range(6)]

        async def create(candidate: Conversation) -> int:
            try:
                await repo.create(candidate, [Member(candidate.id, u, Role.MEMBER, 0, NOW) for u in pair], pair)
            except DirectExists as exists:
                return exists.conversation_id
            return candidate.id

        winners = await asyncio.gather(*(create(candidate) for candidate in candidates))
        assert len(set(winners)) == 1
        assert await repo.find_direct(pair) == winners[0]
        losers = [c.id for c in candidates if c.id != winners[0]]
        assert await repo.get_many(losers) == {}

    async def test_adding_members_skips_current_ones_and_brings_former_ones_back(self, repo: ConversationStore) -> None:
        group = await self.group(repo, 1, 2)
        await repo.mark_read(group.id, 2, 0)
        assert await repo.remove_member(group.id, 2, NOW + 1)
        assert not await repo.remove_member(group.id, 2, NOW + 1)
        former = await repo.member(group.id, 2)
        assert former is not None
        assert not former.active
        assert await repo.add_members(group.id, [1, 2, 3], Role.MEMBER, NOW + 2, 10) == 2
        assert await repo.member_ids([group.id]) == {group.id: [1, 2, 3]}
        fresh = await repo.get(group.id)
        assert fresh is not None
        assert fresh.member_count == 3

    async def test_kinds_and_members_name_each_existing_conversations_active_members_in_one_read(
        self, repo: ConversationStore
    ) -> None:
        group = await self.group(repo, 3, 1, 2)
        assert await repo.remove_member(group.id, 2, NOW + 1)
        emptied = await self.group(repo, 7)
        assert await repo.remove_member(emptied.id, 7, NOW + 1)
        direct = conversation(Kind.DIRECT, owner=4, members=2)
        await repo.create(direct, [Member(direct.id, user, Role.MEMBER, 0, NOW) for user in (5, 4)])
        found = await repo.kinds_and_members([group.id, emptied.id, direct.id, new_id()])
        assert found == {group.id: (Kind.GROUP, [1, 3]), emptied.id: (Kind.GROUP, []), direct.id: (Kind.DIRECT, [4, 5])}

    async def test_an_owner_leaving_hands_the_group_to_its_longest_standing_member(
        self, repo: ConversationStore
    ) -> None:
        group = await self.group(repo, 1, 2)
        await repo.add_members(group.id, [3], Role.MEMBER, NOW - 10, 10)  # joined before 2 (timestamps say so)
        assert await repo.remove_member(group.id, 1, NOW + 1)
        fresh = await repo.get(group.id)
        heir = await repo.member(group.id, 3)
        former = await repo.member(group.id, 1)
        assert fresh is not None
        assert heir is not None
        assert former is not None
        assert (fresh.owner_id, heir.role, former.role) == (3, Role.OWNER, Role.MEMBER)
        assert await repo.remove_member(group.id, 2, NOW + 2)  # not the owner: nothing changes hands
        after = await repo.get(group.id)
        assert after is not None
        assert after.owner_id == 3

    async def test_a_full_group_takes_nobody_even_under_concurrent_adds(self, repo: ConversationStore) -> None:
        group = await self.group(repo, 1)
        with pytest.raises(GroupFull):
            await repo.add_members(group.id, [2, 3, 4, 5, 6], Role.MEMBER, NOW, 5)
        assert await repo.member_ids([group.id]) == {group.id: [1]}

        async def add(user: int) -> bool:
            try:
                await repo.add_members(group.id, [user], Role.MEMBER, NOW, 5)
            except GroupFull:
                return False
            return True

        added = await asyncio.gather(*(add(user) for user in range(10, 20)))
        assert sum(added) == 4
        members = (await repo.member_ids([group.id]))[group.id]
        assert len(members) == 5
        fresh = await repo.get(group.id)
        assert fresh is not None
        assert fresh.member_count == 5

    async def test_a_users_conversations_come_newest_first_in_pages(self, repo: ConversationStore) -> None:
        user = new_id()
        made = [await self.group(repo, user, updated_at_ms=NOW + n // 2) for n in range(5)]
        left = await self.group(repo, user, 9)
        await repo.remove_member(left.id, user, NOW)
        expected = sorted(made, key=lambda c: (c.updated_at_ms, c.id), reverse=True)
        first = await repo.list_for_user(user, 3, None)
        last = first[-1][0]
        second = await repo.list_for_user(user, 3, Cursor(last.updated_at_ms, last.id))
        assert [c.id for c, _ in first + second] == [c.id for c in expected]
        assert all(member.user_id == user and member.active for _, member in first + second)

    async def test_states_in_one_call_for_many_conversations(self, repo: ConversationStore) -> None:
        user = new_id()
        mine = [await self.group(repo, user) for _ in range(3)]
        theirs = await self.group(repo, 7)
        await repo.mark_read(mine[1].id, user, 0)
        # More ids than one IN list holds: unknown ones and others' conversations are left out.
        asked = [mine[2].id, theirs.id, *(new_id() for _ in range(600)), mine[0].id]
        states = await repo.states(user, asked)
        assert [s.conversation_id for s in states] == [mine[2].id, mine[0].id]
        assert {s.conversation_id for s in await repo.states(user, None)} == {c.id for c in mine}

    async def test_current_members_come_longest_standing_first(self, repo: ConversationStore) -> None:
        group = await self.group(repo, 5, 3)
        await repo.add_members(group.id, [4, 9], Role.MEMBER, NOW - 10, 10)
        await repo.add_members(group.id, [1], Role.MEMBER, NOW + 10, 10)
        assert await repo.remove_member(group.id, 9, NOW + 20)
        await repo.mark_read(group.id, 3, 7)
        assert await repo.list_members(group.id) == [
            Member(group.id, 4, Role.MEMBER, 0, NOW - 10),
            Member(group.id, 3, Role.MEMBER, 7, NOW),
            Member(group.id, 5, Role.OWNER, 0, NOW),
            Member(group.id, 1, Role.MEMBER, 0, NOW + 10),
        ]
        assert await repo.list_members(new_id()) == []

    async def test_a_deleted_conversation_is_gone_with_every_membership(self, repo: ConversationStore) -> None:
        group = await self.group(repo, 1, 2, 3)
        kept = await self.group(repo, 1, 2)
        assert await repo.remove_member(group.id, 3, NOW + 1)
        assert await repo.delete(group.id, NOW + 2) == [1, 2, 3]  # the former member's row too
        assert await repo.get(group.id) is None
        assert await repo.get_many([group.id, kept.id]) == {kept.id: kept}
        assert await repo.member(group.id, 1) is None
        assert await repo.member(group.id, 3) is None
        assert await repo.member_ids([group.id]) == {group.id: []}
        assert await repo.list_members(group.id) == []
        assert [c.id for c, _ in await repo.list_for_user(1, 10, None)] == [kept.id]
        assert [s.conversation_id for s in await repo.states(2, None)] == [kept.id]
        assert await repo.states(2, [group.id]) == []
        # Who hears it (the push job reads this): no one, whether or not the store still names it.
        heard = await repo.kinds_and_members([group.id])
        assert heard.get(group.id, (Kind.GROUP, []))[1] == []
        assert await repo.delete(group.id, NOW + 3) is None
        assert await repo.delete(new_id(), NOW) is None
        assert await repo.member_ids([kept.id]) == {kept.id: [1, 2]}

    async def test_read_marks_only_move_forward_under_concurrent_marks(self, repo: ConversationStore) -> None:
        group = await self.group(repo, 1, 2)
        results = await asyncio.gather(*(repo.mark_read(group.id, 2, seq) for seq in (5, 3, 9, 1, 7)))
        assert max(results) == 9
        assert await repo.mark_read(group.id, 2, 4) == 9
        member = await repo.member(group.id, 2)
        assert member is not None
        assert member.read_seq == 9


class MessageRepoContract:
    @pytest.fixture
    def repo(self, stores: ChatStores) -> MessageStore:
        return stores.messages

    @pytest.fixture
    def conversations(self, stores: ChatStores) -> ConversationStore:
        return stores.conversations

    @pytest.fixture
    async def conversation_id(self, conversations: ConversationStore) -> int:
        group = conversation(members=1)
        await conversations.create(group, [Member(group.id, 1, Role.OWNER, 0, NOW)])
        return group.id

    async def test_persisted_messages_page_both_ways(self, repo: MessageStore, conversation_id: int) -> None:
        batch = [message(conversation_id, seq, text=f"m{seq}", at=NOW + seq) for seq in (1, 2, 4, 5, 7)]
        await repo.persist(batch)
        assert [m.seq for m in await repo.after(conversation_id, 0, 3)] == [1, 2, 4]
        assert [m.seq for m in await repo.after(conversation_id, 4, 10)] == [5, 7]
        assert [m.seq for m in await repo.before(conversation_id, None, 2)] == [5, 7]
        assert [m.seq for m in await repo.before(conversation_id, 5, 10)] == [1, 2, 4]
        assert await repo.after(conversation_id, 0, 10) == batch
        assert await repo.get(conversation_id, batch[2].id) == batch[2]
        assert await repo.get(conversation_id + 1, batch[2].id) is None
        assert await repo.get_many([batch[0].id, new_id()]) == {batch[0].id: batch[0]}

    async def test_persisting_advances_the_conversation_forward_only(
        self, repo: MessageStore, conversation_id: int, conversations: ConversationStore
    ) -> None:
        newer = [message(conversation_id, seq, at=NOW + 100 + seq) for seq in (3, 4)]
        older = [message(conversation_id, seq, at=NOW + seq) for seq in (1, 2)]
        await repo.persist(newer)
        await repo.persist(older)  # a batch from another instance, landing late
        stored = await conversations.get(conversation_id)
        assert stored is not None
        assert (stored.max_seq, stored.last_message_id, stored.updated_at_ms) == (4, newer[1].id, NOW + 104)
        assert [m.seq for m in await repo.after(conversation_id, 0, 10)] == [1, 2, 3, 4]

    async def test_one_batch_advances_each_of_its_conversations_to_its_own_newest(
        self, repo: MessageStore, conversations: ConversationStore
    ) -> None:
        ids = []
        for _ in range(3):
            group = conversation(members=1)
            await conversations.create(group, [Member(group.id, 1, Role.OWNER, 0, NOW)])
            ids.append(group.id)
        ahead = message(ids[2], 9, at=NOW + 900)
        await repo.persist([ahead])
        batch = [message(cid, seq, at=NOW + 10 * n + seq) for n, cid in enumerate(ids) for seq in (1, 2)]
        await repo.persist(batch)
        heads = []
        for cid in ids:
            stored = await conversations.get(cid)
            assert stored is not None
            heads.append((stored.max_seq, stored.last_message_id, stored.updated_at_ms))
        # The third conversation was ahead already: the batch's older messages leave it where it was.
        assert heads == [(2, batch[1].id, NOW + 2), (2, batch[3].id, NOW + 12), (9, ahead.id, NOW + 900)]

    async def test_persisting_is_idempotent_on_seq_and_on_message_id(
        self, repo: MessageStore, conversation_id: int, conversations: ConversationStore
    ) -> None:
        batch = [message(conversation_id, seq) for seq in (1, 2, 3)]
        await repo.persist(batch)
        await repo.persist(batch)  # redelivered after a crash
        await repo.persist([*batch[1:], message(conversation_id, 4)])  # overlapping
        assert [m.seq for m in await repo.after(conversation_id, 0, 10)] == [1, 2, 3, 4]
        assert (await repo.after(conversation_id, 0, 3)) == batch
        stored = await conversations.get(conversation_id)
        assert stored is not None
        assert stored.max_seq == 4

    async def test_recall_erases_the_text_idempotently(self, repo: MessageStore, conversation_id: int) -> None:
        original = message(conversation_id, 1, text="secret")
        await repo.persist([original])
        for _ in range(2):
            recalled = await repo.recall(conversation_id, original.id)
            assert recalled is not None
            assert (recalled.recalled, recalled.text, recalled.seq) == (True, "", 1)
        assert await repo.recall(conversation_id, new_id()) is None
        # A redelivered MessageSent does not bring the text back.
        await repo.persist([original])
        assert (await repo.after(conversation_id, 0, 1))[0].text == ""

    async def test_counts_are_of_stored_and_of_recalled_messages(
        self, repo: MessageStore, conversation_id: int, conversations: ConversationStore
    ) -> None:
        assert await repo.counts(conversation_id) == MessageCounts(0, 0)
        batch = [message(conversation_id, seq) for seq in (1, 2, 4)]
        await repo.persist(batch)
        other = conversation(members=1)
        await conversations.create(other, [Member(other.id, 1, Role.OWNER, 0, NOW)])
        await repo.persist([message(other.id, 1)])
        await repo.recall(conversation_id, batch[1].id)
        assert await repo.counts(conversation_id) == MessageCounts(3, 1)
        assert await repo.counts(other.id) == MessageCounts(1, 0)

    async def test_text_keeps_every_code_point(self, repo: MessageStore, conversation_id: int) -> None:
        text = "\U0001f600é中" * 1333 + "x"
        await repo.persist([message(conversation_id, 1, text=text)])
        assert (await repo.after(conversation_id, 0, 1))[0].text == text


class DedupStoreContract:
    @pytest.fixture
    def store(self, stores: ChatStores) -> DedupStore:
        return stores.dedup

    def reservation(self, sender: int, client_msg_id: str, *, lease: int = NOW + 1000) -> Reservation:
        return Reservation(
            Message(new_id(), 5, new_id(), sender, client_msg_id, "hello", NOW), sent=False, lease_until_ms=lease
        )

    async def test_a_reservation_reads_back_and_a_taken_key_stays_as_it_was(self, store: DedupStore) -> None:
        sender = new_id()
        first = self.reservation(sender, "a")
        assert await store.reserve([first]) == {first.key}
        rival, other = self.reservation(sender, "a"), self.reservation(sender, "b")
        assert await store.reserve([rival, other]) == {other.key}
        found = await store.get_many([first.key, other.key, (sender, "zzz")])
        assert found == {first.key: first, other.key: other}

    async def test_a_reservation_whose_message_is_stored_counts_as_sent(
        self, store: DedupStore, stores: ChatStores
    ) -> None:
        sender = new_id()
        stored, pending = self.reservation(sender, "stored"), self.reservation(sender, "pending")
        await store.reserve([stored, pending])
        await stores.messages.persist([stored.message])
        found = await store.get_many([stored.key, pending.key])
        assert found[stored.key].sent
        assert found[stored.key].message == stored.message
        assert not found[pending.key].sent

    async def test_a_late_retry_after_pruning_gets_the_stored_message_not_a_new_reservation(
        self, store: DedupStore, stores: ChatStores
    ) -> None:
        sender = new_id()
        stored, pending = self.reservation(sender, "stored"), self.reservation(sender, "pending")
        await store.reserve([stored, pending])
        await stores.messages.persist([stored.message])
        # Only reservations of stored messages, created before the cut-off, go.
        assert await stores.prune_reservations(NOW, 100) == 0
        assert await stores.prune_reservations(NOW + 1, 100) == 1
        found = await store.get_many([stored.key, pending.key])
        assert found[stored.key].message == stored.message
        assert found[stored.key].sent
        assert not found[pending.key].sent
        # The retry's new draft is not reserved (alone, or beside a fresh key), so it resolves to the original.
        retry, fresh = self.reservation(sender, "stored"), self.reservation(sender, "fresh")
        assert await store.reserve([retry]) == set()
        assert await store.reserve([retry, fresh]) == {fresh.key}
        assert (await store.get_many([retry.key]))[retry.key].message == stored.message

    async def test_client_message_ids_differ_by_case(self, store: DedupStore) -> None:
        sender = new_id()
        lower, upper = self.reservation(sender, "abc"), self.reservation(sender, "ABC")
        assert await store.reserve([lower, upper]) == {lower.key, upper.key}

    async def test_of_racing_reservations_exactly_one_wins(self, store: DedupStore) -> None:
        sender = new_id()
        rivals = [self.reservation(sender, "race") for _ in range(8)]
        won = await asyncio.gather(*(store.reserve([rival]) for rival in rivals))
        assert sum(len(keys) for keys in won) == 1
        [winner] = [rival for rival, keys in zip(rivals, won, strict=True) if keys]
        assert (await store.get_many([winner.key]))[winner.key] == winner

    async def test_complete_release_and_one_take_over(self, store: DedupStore) -> None:
        sender = new_id()
        sent, failed = self.reservation(sender, "sent"), self.reservation(sender, "failed")
        await store.reserve([sent, failed])
        await store.complete([sent.key])
        await store.release([sent.key, failed.key])
        found = await store.get_many([sent.key, failed.key])
        assert found[sent.key].sent
        assert found[sent.key].lease_until_ms == sent.lease_until_ms  # a sent one keeps its lease
        assert not found[failed.key].sent
        assert found[failed.key].lease_until_ms == 0
        takers = await asyncio.gather(*(store.take_over(found[failed.key], NOW + 5000 + n) for n in range(5)))
        assert sum(takers) == 1
        assert not await store.take_over(found[sent.key], NOW + 9000)
