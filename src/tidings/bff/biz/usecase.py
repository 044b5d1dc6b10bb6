"""The bff's use cases: authenticate, check paging input, and aggregate several services per screen."""

from __future__ import annotations

import asyncio

from tidings.bff.biz.model import Conversation, Findings, Page, Snapshot
from tidings.bff.biz.ports import AccountRepo, ChatRepo, PresenceRepo
from tidings.bff.biz.realtime.membership import Audiences
from tidings.pkg import errors
from tidings.pkg.logger import Logger

DEFAULT_PAGE = 50
MAX_PAGE = 200


class Sync:
    """``GET /v1/sync``: profile, conversations with unread counts and peers' presence, fetched concurrently."""

    def __init__(self, accounts: AccountRepo, chats: ChatRepo, presence: PresenceRepo, logger: Logger) -> None:
        self._accounts = accounts
        self._chats = chats
        self._presence = presence
        self._log = logger

    async def snapshot(self, user_id: int) -> Snapshot:
        # Like errgroup.WithCancel: the first failure cancels the sibling calls; the request deadline bounds all.
        async with asyncio.TaskGroup() as group:
            me = group.create_task(self._accounts.get(user_id))
            conversations = group.create_task(self._chats.for_user(user_id))
        peers = {member for conv in conversations.result() for member in conv.member_ids if member != user_id}
        try:
            presence = await self._presence.statuses(sorted(peers))
        except Exception as exc:
            # Presence lives in Redis only: while it is unreachable the snapshot comes without it (peers' presence
            # unknown) rather than not at all; conversations and unread counts come from chat, which does without.
            self._log.warning("presence unavailable; sync without it", error=repr(exc), peers=len(peers))
            presence = {}
        return Snapshot(me.result(), conversations.result(), presence)


class Members:
    """Adding and removing group members: chat commits the change, then the live fan-out caches forget it, so a
    removed member's typing and presence stop at once (and a new member's start)."""

    def __init__(self, chats: ChatRepo, audiences: Audiences | None = None) -> None:
        self._chats = chats
        self._audiences = audiences

    async def add(self, user_id: int, conversation_id: int, member_ids: list[int]) -> Conversation:
        conversation = await self._chats.add_members(user_id, conversation_id, member_ids)
        await self._changed(conversation, [])
        return conversation

    async def remove(self, user_id: int, conversation_id: int, member_id: int) -> Conversation:
        conversation = await self._chats.remove_member(user_id, conversation_id, member_id)
        await self._changed(conversation, [member_id])
        return conversation

    async def _changed(self, conversation: Conversation, left: list[int]) -> None:
        if self._audiences is not None:
            await self._audiences.changed(conversation.id, [*left, *conversation.member_ids])


def page_request(
    after_seq: int | None, before_seq: int | None, limit: int | None
) -> tuple[int | None, int | None, int]:
    """Check history paging input as API.md states it: one direction at most, limit 1-200 (larger is capped)."""
    if after_seq is not None and before_seq is not None:
        errors.raise_for_fields({"before_seq": "give after_seq or before_seq, not both"})
    problems = {}
    if after_seq is not None and after_seq < 0:
        problems["after_seq"] = "must be 0 or more"
    if before_seq is not None and before_seq < 1:
        problems["before_seq"] = "must be 1 or more"
    if limit is not None and limit < 1:
        problems["limit"] = "must be 1 or more"
    errors.raise_for_fields(problems)
    return after_seq, before_seq, min(limit or DEFAULT_PAGE, MAX_PAGE)


# API.md: a search query is 1-256 code points once trimmed; 20 results a page unless asked, 50 at most.
SEARCH_QUERY_LENGTH = range(1, 257)
SEARCH_PAGE = 20
MAX_SEARCH_PAGE = 50


async def search_messages(
    chats: ChatRepo, user_id: int, query: str, conversation_id: int | None, cursor: str | None, limit: int | None
) -> Findings:
    """Check the search input as API.md states it, then search the caller's conversations (chat filters by them)."""
    query = query.strip()
    problems = {}
    if len(query) not in SEARCH_QUERY_LENGTH:
        problems["query"] = (
            f"{SEARCH_QUERY_LENGTH.start}-{SEARCH_QUERY_LENGTH.stop - 1} characters, not counting spaces around them"
        )
    if limit is not None and not 1 <= limit <= MAX_SEARCH_PAGE:
        problems["limit"] = f"1-{MAX_SEARCH_PAGE}"
    errors.raise_for_fields(problems)
    return await chats.search(
        user_id, query, conversation_id=conversation_id, cursor=cursor or None, limit=limit or SEARCH_PAGE
    )


async def history(
    chats: ChatRepo,
    user_id: int,
    conversation_id: int,
    after_seq: int | None,
    before_seq: int | None,
    limit: int | None,
) -> Page:
    after, before, size = page_request(after_seq, before_seq, limit)
    return await chats.history(user_id, conversation_id, after_seq=after, before_seq=before, limit=size)


def newest_first(conversations: list[Conversation]) -> list[Conversation]:
    """API.md's order: by ``updated_at``, then id, descending."""
    return sorted(conversations, key=lambda conv: (conv.updated_at_ms, conv.id), reverse=True)
