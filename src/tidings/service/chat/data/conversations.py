"""``SQLConversationRepo``: conversations, members, direct pairs and read marks (SQLite and MySQL alike).

``CachedConversationRepo`` reads conversation states (max seq and read seq, for unread counts) cache-aside: a
sync of 200 conversations is two batched cache reads (one MGET each, ``cache.batch_size`` keys per round trip),
and the database only for the keys that missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.pkg.db import ReadReplica
from tidings.pkg.repo import SQLRepo, chunks
from tidings.service.chat.biz.model import Conversation, ConversationState, Cursor, Kind, Member, Role
from tidings.service.chat.biz.ports import DirectExists, GroupFull
from tidings.service.chat.data.caches import ChatCaches
from tidings.service.chat.store.heads import Head
from tidings.service.chat.store.members import kinds_and_members
from tidings.service.chat.tables import conversation_members as members
from tidings.service.chat.tables import conversations, direct_pairs

# Member rows are inserted this many at a time (a 10,000-member group is 10 statements).
_INSERT_CHUNK = 1000

_MEMBER_COLUMNS = (
    members.c.conversation_id,
    members.c.user_id,
    members.c.role,
    members.c.read_seq,
    members.c.joined_at_ms,
    members.c.left_at_ms,
)

# Conversations that are not deleted: what every read of chat's serves.
_LIVE = select(conversations).where(conversations.c.deleted_at_ms.is_(None))


def conversation_from_row(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        kind=Kind(row.kind),
        title=row.title,
        owner_id=row.owner_id,
        max_seq=row.max_seq,
        last_message_id=row.last_message_id,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        member_count=row.member_count,
    )


def _member_from_row(row: Any) -> Member:
    return Member(
        conversation_id=row.conversation_id,
        user_id=row.user_id,
        role=Role(row.role),
        read_seq=row.read_seq,
        joined_at_ms=row.joined_at_ms,
        active=row.left_at_ms is None,
    )


def _member_to_row(member: Member) -> dict[str, Any]:
    return {
        "conversation_id": member.conversation_id,
        "user_id": member.user_id,
        "role": int(member.role),
        "read_seq": member.read_seq,
        "joined_at_ms": member.joined_at_ms,
        "left_at_ms": None,
    }


class SQLConversationRepo(SQLRepo):
    async def create(
        self, conversation: Conversation, new_members: Sequence[Member], pair: tuple[int, int] | None = None
    ) -> None:
        try:
            async with self._write() as conn:
                if pair is not None:
                    # First, so that of two racing creations the second stops here (the unique key decides).
                    await conn.execute(
                        insert(direct_pairs).values(
                            user_low=pair[0], user_high=pair[1], conversation_id=conversation.id
                        )
                    )
                await conn.execute(
                    insert(conversations).values(
                        id=conversation.id,
                        kind=int(conversation.kind),
                        title=conversation.title,
                        owner_id=conversation.owner_id,
                        member_count=conversation.member_count,
                        max_seq=conversation.max_seq,
                        seq_leased=0,
                        last_message_id=conversation.last_message_id,
                        created_at_ms=conversation.created_at_ms,
                        updated_at_ms=conversation.updated_at_ms,
                    )
                )
                for chunk in chunks(new_members, _INSERT_CHUNK):
                    await conn.execute(insert(members), [_member_to_row(member) for member in chunk])
        except IntegrityError:
            if pair is None:
                raise
            existing = await self.find_direct(pair)
            if existing is None:
                raise
            raise DirectExists(existing) from None

    async def find_direct(self, pair: tuple[int, int]) -> int | None:
        async with self._read() as conn:
            found: int | None = await conn.scalar(
                select(direct_pairs.c.conversation_id).where(
                    direct_pairs.c.user_low == pair[0], direct_pairs.c.user_high == pair[1]
                )
            )
        return found

    async def get(self, conversation_id: int) -> Conversation | None:
        async with self._read() as conn:
            row = (await conn.execute(_LIVE.where(conversations.c.id == conversation_id))).first()
        return conversation_from_row(row) if row is not None else None

    async def get_many(self, conversation_ids: Sequence[int]) -> dict[int, Conversation]:
        found: dict[int, Conversation] = {}
        async with self._read() as conn:
            for chunk in chunks(list(conversation_ids)):
                rows = await conn.execute(_LIVE.where(conversations.c.id.in_(chunk)))
                found.update((row.id, conversation_from_row(row)) for row in rows)
        return found

    async def member(self, conversation_id: int, user_id: int) -> Member | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(*_MEMBER_COLUMNS).where(
                        members.c.conversation_id == conversation_id, members.c.user_id == user_id
                    )
                )
            ).first()
        return _member_from_row(row) if row is not None else None

    async def member_ids(self, conversation_ids: Sequence[int]) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {conversation_id: [] for conversation_id in conversation_ids}
        async with self._read() as conn:
            for chunk in chunks(list(conversation_ids)):
                rows = await conn.execute(
                    select(members.c.conversation_id, members.c.user_id)
                    .where(members.c.conversation_id.in_(chunk), members.c.left_at_ms.is_(None))
                    .order_by(members.c.conversation_id, members.c.user_id)
                )
                for conversation_id, user_id in rows:
                    found[conversation_id].append(user_id)
        return found

    async def list_members(self, conversation_id: int) -> list[Member]:
        query = (
            select(*_MEMBER_COLUMNS)
            .where(members.c.conversation_id == conversation_id, members.c.left_at_ms.is_(None))
            .order_by(members.c.joined_at_ms, members.c.user_id)
        )

        async def read(conn: AsyncConnection) -> list[Member]:
            return [_member_from_row(row) for row in await conn.execute(query)]

        return await self._replica_read(read)

    async def kinds_and_members(self, conversation_ids: Sequence[int]) -> dict[int, tuple[Kind, list[int]]]:
        """Each existing conversation's kind and active member ids (ascending), one query per chunk: the push
        job's read of who hears a conversation (``store.members``)."""
        async with self._read() as conn:
            found = await kinds_and_members(conn, conversation_ids)
        return {conversation_id: (Kind(kind), ids) for conversation_id, (kind, ids) in found.items()}

    async def list_for_user(self, user_id: int, limit: int, after: Cursor | None) -> list[tuple[Conversation, Member]]:
        query = (
            select(conversations, *_MEMBER_COLUMNS[1:])
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id, members.c.left_at_ms.is_(None))
            .order_by(conversations.c.updated_at_ms.desc(), conversations.c.id.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                or_(
                    conversations.c.updated_at_ms < after.updated_at_ms,
                    and_(
                        conversations.c.updated_at_ms == after.updated_at_ms,
                        conversations.c.id < after.conversation_id,
                    ),
                )
            )

        async def read(conn: AsyncConnection) -> list[Any]:
            return list((await conn.execute(query)).all())

        return [
            (
                conversation_from_row(row),
                Member(row.id, row.user_id, Role(row.role), row.read_seq, row.joined_at_ms, active=True),
            )
            for row in await self._replica_read(read)
        ]

    async def states(self, user_id: int, conversation_ids: Sequence[int] | None) -> list[ConversationState]:
        query = (
            select(conversations.c.id, conversations.c.max_seq, conversations.c.updated_at_ms, members.c.read_seq)
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id, members.c.left_at_ms.is_(None))
        )
        wanted: list[Sequence[int] | None] = list(chunks(conversation_ids)) if conversation_ids is not None else [None]
        states: list[ConversationState] = []
        async with self._read() as conn:
            for chunk in wanted:
                page = query if chunk is None else query.where(members.c.conversation_id.in_(chunk))
                rows = await conn.execute(page)
                states += [ConversationState(row.id, row.max_seq, row.read_seq, row.updated_at_ms) for row in rows]
        if conversation_ids is not None:
            order = {conversation_id: index for index, conversation_id in enumerate(conversation_ids)}
            states.sort(key=lambda state: order[state.conversation_id])
        return states

    async def add_members(
        self, conversation_id: int, user_ids: Sequence[int], role: Role, now_ms: int, max_members: int
    ) -> int:
        async with self._write() as conn:
            await _lock_conversation(conn, conversation_id)
            known: dict[int, bool] = {}
            for chunk in chunks(list(user_ids)):
                rows = await conn.execute(
                    select(members.c.user_id, members.c.left_at_ms).where(
                        members.c.conversation_id == conversation_id, members.c.user_id.in_(chunk)
                    )
                )
                known.update((user, left_at is None) for user, left_at in rows)
            joining = [user for user in user_ids if not known.get(user, False)]
            if not joining:
                return 0
            grown = await conn.execute(
                update(conversations)
                .where(
                    conversations.c.id == conversation_id,
                    conversations.c.member_count + len(joining) <= max_members,
                )
                .values(member_count=conversations.c.member_count + len(joining))
            )
            if grown.rowcount != 1:
                raise GroupFull()
            returning = [user for user in joining if user in known]
            for chunk in chunks(returning):
                await conn.execute(
                    update(members)
                    .where(members.c.conversation_id == conversation_id, members.c.user_id.in_(chunk))
                    .values(left_at_ms=None, role=int(role), joined_at_ms=now_ms)
                )
            fresh = [Member(conversation_id, user, role, 0, now_ms) for user in joining if user not in known]
            for rows_chunk in chunks(fresh, _INSERT_CHUNK):
                await conn.execute(insert(members), [_member_to_row(member) for member in rows_chunk])
        return len(joining)

    async def remove_member(self, conversation_id: int, user_id: int, now_ms: int) -> bool:
        async with self._write() as conn:
            await _lock_conversation(conn, conversation_id)
            left = await conn.execute(
                update(members)
                .where(
                    members.c.conversation_id == conversation_id,
                    members.c.user_id == user_id,
                    members.c.left_at_ms.is_(None),
                )
                .values(left_at_ms=now_ms)
            )
            if left.rowcount != 1:
                return False
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(member_count=conversations.c.member_count - 1)
            )
            await self._hand_on_ownership(conn, conversation_id, user_id)
        return True

    async def _hand_on_ownership(self, conn: AsyncConnection, conversation_id: int, leaver: int) -> None:
        """If ``leaver`` owned the group, its longest-standing current member (then the lowest id) owns it now;
        under the conversation's lock, so two leaving at once cannot leave it without an owner."""
        owned = await conn.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.owner_id == leaver)
            .values(owner_id=0)
        )
        if owned.rowcount != 1:
            return
        await conn.execute(
            update(members)
            .where(members.c.conversation_id == conversation_id, members.c.user_id == leaver)
            .values(role=int(Role.MEMBER))
        )
        heir = (
            await conn.execute(
                select(members.c.user_id)
                .where(members.c.conversation_id == conversation_id, members.c.left_at_ms.is_(None))
                .order_by(members.c.joined_at_ms, members.c.user_id)
                .limit(1)
            )
        ).scalar()
        if heir is None:
            return
        await conn.execute(
            update(members)
            .where(members.c.conversation_id == conversation_id, members.c.user_id == heir)
            .values(role=int(Role.OWNER))
        )
        await conn.execute(update(conversations).where(conversations.c.id == conversation_id).values(owner_id=heir))

    async def mark_read(self, conversation_id: int, user_id: int, seq: int) -> int:
        async with self._write() as conn:
            # The condition makes it forward-only even when two devices mark at once.
            await conn.execute(
                update(members)
                .where(
                    members.c.conversation_id == conversation_id,
                    members.c.user_id == user_id,
                    members.c.left_at_ms.is_(None),
                    members.c.read_seq < seq,
                )
                .values(read_seq=seq)
            )
            read_seq: int | None = await conn.scalar(
                select(members.c.read_seq).where(
                    members.c.conversation_id == conversation_id, members.c.user_id == user_id
                )
            )
        return read_seq or 0

    async def delete(self, conversation_id: int, now_ms: int) -> list[int] | None:
        """Mark the conversation deleted and remove its member rows, in one transaction under its lock. The rows
        of its messages (and its direct pair, were it a direct conversation) stay in the database."""
        async with self._write() as conn:
            deleted = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id, conversations.c.deleted_at_ms.is_(None))
                .values(deleted_at_ms=now_ms, member_count=0)
            )
            if deleted.rowcount != 1:
                return None
            had = list(
                await conn.scalars(
                    select(members.c.user_id)
                    .where(members.c.conversation_id == conversation_id)
                    .order_by(members.c.user_id)
                )
            )
            await conn.execute(delete(members).where(members.c.conversation_id == conversation_id))
        return had


async def _lock_conversation(conn: AsyncConnection, conversation_id: int) -> None:
    """Serialize membership changes of one conversation: a no-op write takes the row lock (MySQL) or the write
    lock (SQLite) before anything is read, so the member count checked is the one updated."""
    await conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(member_count=conversations.c.member_count)
    )


class CachedConversationRepo(SQLConversationRepo):
    """States of listed conversations from the ``heads`` and ``reads`` caches; every write that changes a read
    mark or a membership invalidates the read marks it touched after it commits (the persist job invalidates
    heads). Unread stays ``max_seq - read_seq``, computed by the reader from the two."""

    def __init__(
        self,
        engine: AsyncEngine,
        caches: ChatCaches,
        *,
        statements: AsyncEngine | None = None,
        replica: ReadReplica | None = None,
    ) -> None:
        super().__init__(engine, statements=statements, replica=replica)
        self._heads = caches.heads
        self._reads = caches.reads

    async def states(self, user_id: int, conversation_ids: Sequence[int] | None) -> list[ConversationState]:
        if conversation_ids is None:
            # Which conversations are the user's is one indexed query, which brings their states along.
            return await super().states(user_id, None)
        wanted = list(dict.fromkeys(conversation_ids))
        async with asyncio.TaskGroup() as group:
            reads = group.create_task(self._reads.get_many([(cid, user_id) for cid in wanted], self._load_reads))
            heads = group.create_task(self._heads.get_many(wanted, self._load_heads))
        marks, newest = reads.result(), heads.result()
        return [
            ConversationState(cid, newest[cid][0], marks[(cid, user_id)], newest[cid][1])
            for cid in wanted
            if (cid, user_id) in marks and cid in newest
        ]

    async def _load_reads(self, keys: list[tuple[int, int]]) -> Mapping[tuple[int, int], int]:
        by_user: dict[int, list[int]] = {}
        for conversation_id, user_id in keys:
            by_user.setdefault(user_id, []).append(conversation_id)
        found: dict[tuple[int, int], int] = {}
        for user_id, conversation_ids in by_user.items():
            for state in await super().states(user_id, conversation_ids):
                found[(state.conversation_id, user_id)] = state.read_seq
        return found

    async def _load_heads(self, conversation_ids: list[int]) -> Mapping[int, Head]:
        found = await self.get_many(conversation_ids)
        return {cid: (conversation.max_seq, conversation.updated_at_ms) for cid, conversation in found.items()}

    async def create(
        self, conversation: Conversation, new_members: Sequence[Member], pair: tuple[int, int] | None = None
    ) -> None:
        await super().create(conversation, new_members, pair)
        # "No such conversation" or "not a member" may have been remembered (the null sentinel) before.
        await self._heads.invalidate([conversation.id], entity_id=conversation.id)
        await self._forget_marks(conversation.id, [member.user_id for member in new_members])

    async def add_members(
        self, conversation_id: int, user_ids: Sequence[int], role: Role, now_ms: int, max_members: int
    ) -> int:
        joined = await super().add_members(conversation_id, user_ids, role, now_ms, max_members)
        await self._forget_marks(conversation_id, user_ids)
        return joined

    async def remove_member(self, conversation_id: int, user_id: int, now_ms: int) -> bool:
        left = await super().remove_member(conversation_id, user_id, now_ms)
        await self._forget_marks(conversation_id, [user_id])
        return left

    async def delete(self, conversation_id: int, now_ms: int) -> list[int] | None:
        had = await super().delete(conversation_id, now_ms)
        if had is not None:
            await self._heads.invalidate([conversation_id], entity_id=conversation_id)
            await self._forget_marks(conversation_id, had)
        return had

    async def mark_read(self, conversation_id: int, user_id: int, seq: int) -> int:
        read_seq = await super().mark_read(conversation_id, user_id, seq)
        if read_seq == seq:  # moved here now, or by a racing call: either way the cached mark may be older
            await self._forget_marks(conversation_id, [user_id])
        return read_seq

    async def _forget_marks(self, conversation_id: int, user_ids: Sequence[int]) -> None:
        await self._reads.invalidate([(conversation_id, user) for user in user_ids], entity_id=conversation_id)
