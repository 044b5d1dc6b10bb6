"""What viewers (and everyone above) look up: users with their devices and conversations, conversations with their
members and counts, history around a message, and search over every conversation.

Look-ups by id go to the services alone, so they work while the search index is down (search answers
SEARCH_UNAVAILABLE then).
"""

from __future__ import annotations

import asyncio

from tidings.admin.biz.model import Caller, ConversationDetail, HistoryPage, Hits, Role, UserDetail, UserRecord
from tidings.admin.biz.operators import require
from tidings.admin.biz.ports import Accounts, Chats, Devices
from tidings.api.account.v1 import errors as account_errors
from tidings.pkg import errors

MAX_QUERY = 256
MAX_USERS = 50
# Messages shown on each side of a search hit.
CONTEXT = 5


class Lookups:
    def __init__(self, accounts: Accounts, chats: Chats, devices: Devices) -> None:
        self._accounts = accounts
        self._chats = chats
        self._devices = devices

    async def user(self, caller: Caller, user_id: int) -> UserDetail:
        """USER_NOT_FOUND."""
        require(caller, Role.VIEWER)
        async with asyncio.TaskGroup() as group:
            records = group.create_task(self._accounts.inspect(user_ids=[user_id]))
            devices = group.create_task(self._devices.of(user_id))
            conversations = group.create_task(self._chats.conversations_of(user_id))
        if not records.result():
            raise account_errors.user_not_found(f"no user {user_id}")
        return UserDetail(records.result()[0], devices.result(), conversations.result())

    async def users(self, caller: Caller, query: str) -> list[UserRecord]:
        """By id, by whole username (banned users too), then by username or display name prefix."""
        require(caller, Role.VIEWER)
        query = query.strip()
        if not 1 <= len(query) <= 64:
            errors.raise_for_fields({"query": "1-64 characters"})
        ids = [int(query)] if query.isdigit() and 0 < int(query) < 2**63 else []
        found = await self._accounts.inspect(user_ids=ids, usernames=[query])
        try:
            ids = [i for i in await self._accounts.search(query, MAX_USERS) if all(r.user.id != i for r in found)]
        except errors.TidingsError as error:
            if error.code != 503:  # a prefix search needs the index; the exact look-ups above do not
                raise
            ids = []
        if ids:
            found += await self._accounts.inspect(user_ids=ids)
        return found[:MAX_USERS]

    async def conversation(self, caller: Caller, conversation_id: int) -> ConversationDetail:
        require(caller, Role.VIEWER)
        return await self._chats.inspect(conversation_id)

    async def history(
        self, caller: Caller, conversation_id: int, *, after_seq: int | None, before_seq: int | None, limit: int
    ) -> HistoryPage:
        require(caller, Role.VIEWER)
        return await self._chats.history(
            caller.operator.id, conversation_id, after_seq=after_seq, before_seq=before_seq, limit=limit
        )

    async def around(self, caller: Caller, conversation_id: int, seq: int) -> HistoryPage:
        """The message at ``seq`` with up to ``CONTEXT`` messages on each side."""
        require(caller, Role.VIEWER)
        operator = caller.operator.id
        async with asyncio.TaskGroup() as group:
            older = group.create_task(
                self._chats.history(operator, conversation_id, after_seq=None, before_seq=seq + 1, limit=CONTEXT + 1)
            )
            newer = group.create_task(
                self._chats.history(operator, conversation_id, after_seq=seq, before_seq=None, limit=CONTEXT)
            )
        return HistoryPage(older.result().messages + newer.result().messages, newer.result().has_more)

    async def search(
        self, caller: Caller, query: str, conversation_id: int | None, cursor: str | None, limit: int
    ) -> Hits:
        require(caller, Role.VIEWER)
        if not query.strip() or len(query) > MAX_QUERY:
            errors.raise_for_fields({"query": f"1-{MAX_QUERY} characters"})
        return await self._chats.search(caller.operator.id, query, conversation_id, cursor, limit)
