"""Conversations: direct ones (one per pair) and groups, membership, and the views and states members see.

Member lists are read cache-aside (``members_cache``, one batched read for a whole page of conversations); a
membership change commits, then invalidates the list and the changed members' gates. Read marks, max seq and
unread counts are always read fresh from the database (docs/CACHE.md).

Operators (the admin module) inspect any conversation and delete groups; they are no members, so what they are
answered carries no one's read state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tidings.api.account.v1 import errors as account_errors
from tidings.api.chat.v1 import errors as chat_errors
from tidings.pkg import errors
from tidings.pkg.cache.ports import ReadThrough
from tidings.pkg.clock import Clock
from tidings.pkg.logger import Logger
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.model import (
    MAX_GROUP_MEMBERS,
    MAX_TITLE_LENGTH,
    Conversation,
    ConversationPage,
    ConversationState,
    ConversationView,
    Cursor,
    Inspection,
    Kind,
    Member,
    Role,
    direct_pair,
    list_limit,
    reason_problem,
)
from tidings.service.chat.biz.ports import (
    ConversationRepo,
    DirectExists,
    GroupFull,
    IdGen,
    MessageRepo,
    UserDirectory,
)


class Conversations:
    def __init__(
        self,
        conversations: ConversationRepo,
        messages: MessageRepo,
        directory: UserDirectory,
        access: Access,
        ids: IdGen,
        clock: Clock,
        logger: Logger,
        members_cache: ReadThrough[int, tuple[int, ...]] | None = None,
    ) -> None:
        self._log = logger
        self._members_cache = members_cache
        self._conversations = conversations
        self._messages = messages
        self._directory = directory
        self._access = access
        self._ids = ids
        self._clock = clock

    async def create_direct(self, user_id: int, peer_id: int) -> tuple[ConversationView, bool]:
        """The pair's one direct conversation and whether this call created it (creation is idempotent)."""
        if peer_id == user_id:
            errors.raise_for_fields({"peer_id": "must be another user"})
        pair = direct_pair(user_id, peer_id)
        existing = await self._conversations.find_direct(pair)
        if existing is not None:
            return await self.get(user_id, existing), False
        await self._require_users([peer_id])
        if await self._access.blocked(user_id, peer_id):
            raise chat_errors.user_blocked("you cannot start a conversation with this user", user_id=str(peer_id))
        now = self._clock.now_ms()
        conversation = Conversation(
            id=self._ids.next_id(),
            kind=Kind.DIRECT,
            title="",
            owner_id=0,
            max_seq=0,
            last_message_id=None,
            created_at_ms=now,
            updated_at_ms=now,
            member_count=2,
        )
        members = [Member(conversation.id, user, Role.MEMBER, 0, now) for user in pair]
        try:
            await self._conversations.create(conversation, members, pair)
        except DirectExists as exists:  # the same pair created concurrently: theirs is the one
            return await self.get(user_id, exists.conversation_id), False
        return await self.get(user_id, conversation.id), True

    async def create_group(self, user_id: int, title: str, member_ids: Sequence[int]) -> ConversationView:
        """A group owned by the caller, who is a member whether or not listed."""
        errors.raise_for_fields(
            {"title": f"1-{MAX_TITLE_LENGTH} characters"} if not 1 <= len(title) <= MAX_TITLE_LENGTH else {}
        )
        others = [member for member in dict.fromkeys(member_ids) if member != user_id]
        if len(others) + 1 > MAX_GROUP_MEMBERS:
            raise _too_large()
        await self._require_users(others)
        await self._require_not_blocked(user_id, others)
        now = self._clock.now_ms()
        conversation = Conversation(
            id=self._ids.next_id(),
            kind=Kind.GROUP,
            title=title,
            owner_id=user_id,
            max_seq=0,
            last_message_id=None,
            created_at_ms=now,
            updated_at_ms=now,
            member_count=len(others) + 1,
        )
        members = [Member(conversation.id, user_id, Role.OWNER, 0, now)]
        members += [Member(conversation.id, other, Role.MEMBER, 0, now) for other in others]
        await self._conversations.create(conversation, members)
        return await self.get(user_id, conversation.id)

    async def get(self, user_id: int, conversation_id: int) -> ConversationView:
        conversation, member = await self._access.require_member(conversation_id, user_id)
        (view,) = await self._views([(conversation, member)])
        return view

    async def list_page(self, user_id: int, limit: int, after: Cursor | None) -> ConversationPage:
        """The caller's conversations, newest activity first (``updated_at``, then id, descending)."""
        if limit < 0:
            errors.raise_for_fields({"limit": "must not be negative"})
        size = list_limit(limit)
        rows = await self._conversations.list_for_user(user_id, size + 1, after)
        page = rows[:size]
        views = await self._views(page)
        last = page[-1][0] if len(rows) > size else None
        return ConversationPage(tuple(views), Cursor(last.updated_at_ms, last.id) if last is not None else None)

    async def add_members(self, user_id: int, conversation_id: int, member_ids: Sequence[int]) -> ConversationView:
        """Any member may add users who have not blocked them (nor been blocked by them) to a group; current
        members are skipped, former ones come back."""
        conversation, _ = await self._access.require_member(conversation_id, user_id)
        if conversation.kind is not Kind.GROUP:
            raise chat_errors.not_a_group("members can be added to groups only", conversation_id=str(conversation_id))
        wanted = list(dict.fromkeys(member_ids))
        if not wanted:
            errors.raise_for_fields({"member_ids": "must name at least one user"})
        if len(wanted) + 1 > MAX_GROUP_MEMBERS:
            raise _too_large()
        await self._require_users(wanted)
        current = set((await self._member_ids([conversation_id])).get(conversation_id, ()))
        await self._require_not_blocked(user_id, [user for user in wanted if user not in current])
        try:
            await self._conversations.add_members(
                conversation_id, wanted, Role.MEMBER, self._clock.now_ms(), MAX_GROUP_MEMBERS
            )
        except GroupFull:
            raise _too_large() from None
        await self._membership_changed(conversation_id, wanted)
        return await self.get(user_id, conversation_id)

    async def remove_member(self, user_id: int, conversation_id: int, member_id: int) -> ConversationView:
        """A member leaves (``member_id`` is the caller), or the owner removes someone."""
        conversation, caller = await self._access.require_member(conversation_id, user_id)
        if conversation.kind is not Kind.GROUP:
            raise chat_errors.not_a_group("members can leave groups only", conversation_id=str(conversation_id))
        if member_id != user_id and caller.role is not Role.OWNER:
            raise chat_errors.not_group_owner("only the owner may remove other members")
        await self._conversations.remove_member(conversation_id, member_id, self._clock.now_ms())
        await self._membership_changed(conversation_id, [member_id])
        fresh = await self._conversations.get(conversation_id)
        (view,) = await self._views([(fresh or conversation, caller)])
        return view

    async def states(self, user_id: int, conversation_ids: Sequence[int]) -> list[ConversationState]:
        """The caller's state in each listed conversation they are in (every one of theirs when none is listed)."""
        wanted = list(dict.fromkeys(conversation_ids)) if conversation_ids else None
        return await self._conversations.states(user_id, wanted)

    async def inspect(self, conversation_id: int) -> Inspection:
        """A conversation as an operator sees it: its current members with their roles and read marks, and how
        many messages it holds. CONVERSATION_NOT_FOUND for an unknown or deleted one."""
        conversation = await self._access.require_conversation(conversation_id)
        members = await self._conversations.list_members(conversation_id)
        counts = await self._messages.counts(conversation_id)
        view = await self._operator_view(conversation, sorted(member.user_id for member in members))
        return Inspection(view, tuple(members), counts)

    async def delete(self, operator_id: int, conversation_id: int, reason: str) -> ConversationView:
        """An operator deletes a group: no one is a member any more, so it leaves every member's list and its
        history is served to no one (the messages stay stored). Answers the group as it was.

        Direct conversations are not deleted (NOT_A_GROUP): each pair has exactly one, for good."""
        errors.raise_for_fields({"reason": why} if (why := reason_problem(reason)) else {})
        conversation = await self._access.require_conversation(conversation_id)
        if conversation.kind is not Kind.GROUP:
            raise chat_errors.not_a_group("only groups can be deleted", conversation_id=str(conversation_id))
        member_ids = (await self._conversations.member_ids([conversation_id])).get(conversation_id, [])
        view = await self._operator_view(conversation, member_ids)
        had_members = await self._conversations.delete(conversation_id, self._clock.now_ms())
        if had_members is None:  # deleted meanwhile by another call: it is gone either way
            raise chat_errors.conversation_not_found("no such conversation", conversation_id=str(conversation_id))
        await self._membership_changed(conversation_id, had_members)
        self._log.info(
            "group deleted by an operator",
            conversation_id=conversation_id,
            operator_id=operator_id,
            members=len(member_ids),
            reason=reason,
        )
        return view

    async def _operator_view(self, conversation: Conversation, member_ids: Sequence[int]) -> ConversationView:
        """The conversation as no one member sees it (no read mark), with its last message."""
        last_id = conversation.last_message_id
        last = await self._messages.get_many([last_id]) if last_id is not None else {}
        return ConversationView(conversation, tuple(member_ids), read_seq=0, last_message=last.get(last_id or 0))

    async def _views(self, rows: Sequence[tuple[Conversation, Member]]) -> list[ConversationView]:
        """Views of several conversations with a fixed number of reads, however many there are (no N+1)."""
        if not rows:
            return []
        members = await self._member_ids([conversation.id for conversation, _ in rows])
        last_ids = [c.last_message_id for c, _ in rows if c.last_message_id is not None]
        last = await self._messages.get_many(last_ids) if last_ids else {}
        return [
            ConversationView(
                conversation=conversation,
                member_ids=tuple(members.get(conversation.id, ())),
                read_seq=member.read_seq,
                last_message=last.get(conversation.last_message_id) if conversation.last_message_id else None,
            )
            for conversation, member in rows
        ]

    async def _member_ids(self, conversation_ids: list[int]) -> Mapping[int, Sequence[int]]:
        if self._members_cache is None:
            return await self._conversations.member_ids(conversation_ids)
        return await self._members_cache.get_many(conversation_ids, self._load_member_ids)

    async def _load_member_ids(self, conversation_ids: list[int]) -> Mapping[int, tuple[int, ...]]:
        found = await self._conversations.member_ids(conversation_ids)
        return {conversation_id: tuple(members) for conversation_id, members in found.items()}

    async def _membership_changed(self, conversation_id: int, user_ids: Sequence[int]) -> None:
        """After the change committed: the member list and the members' gates are read fresh from now on."""
        if self._members_cache is not None:
            await self._members_cache.invalidate([conversation_id], entity_id=conversation_id)
        await self._access.forget(conversation_id, user_ids)

    async def _require_not_blocked(self, user_id: int, others: Sequence[int]) -> None:
        """Blocks hold for groups as for direct chats (README, who can add you to a group): nobody puts someone
        who blocked them, or whom they blocked, into a group."""
        blocked = await self._access.blocked_among(user_id, others)
        if blocked:
            raise chat_errors.user_blocked(
                "you cannot add someone who blocked you or whom you blocked",
                user_ids=",".join(str(user) for user in blocked[:20]),
            )

    async def _require_users(self, user_ids: Sequence[int]) -> None:
        if not user_ids:
            return
        found = await self._directory.existing(user_ids)
        missing = [user for user in user_ids if user not in found]
        if missing:
            raise account_errors.user_not_found(
                "no such user" if len(missing) == 1 else "no such users",
                user_ids=",".join(str(user) for user in missing[:20]),
            )


def _too_large() -> errors.TidingsError:
    return chat_errors.group_too_large(f"a group has at most {MAX_GROUP_MEMBERS} members", limit=str(MAX_GROUP_MEMBERS))
