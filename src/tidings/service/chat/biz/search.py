"""Message search: the caller's words, looked for in the conversations they are a member of now.

The search index keeps no membership: the conversations are chat's, read fresh for every search and handed to the
index as a filter, so a member who left stops seeing the conversation's messages at once, and a new member sees
its whole history, as ``history`` does. An operator searches every conversation (or the one given, if it is not
deleted) without being a member.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors
from tidings.search.model import (
    EVERYWHERE,
    MAX_LIMIT,
    MessageHit,
    MessageQuery,
    MessageSearch,
    Page,
    Scope,
    SearchUnavailable,
)
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.ports import ConversationRepo

# Code points of a query once trimmed.
QUERY_LENGTH = range(1, 257)


def query_problems(query: str) -> dict[str, str]:
    """What is wrong with a search query (``{"query": why}``), if anything."""
    trimmed = query.strip()
    if len(trimmed) not in QUERY_LENGTH:
        return {"query": f"{QUERY_LENGTH.start}-{QUERY_LENGTH.stop - 1} characters, not counting spaces around them"}
    if any(unicodedata.category(char) == "Cc" for char in trimmed):
        return {"query": "must not contain control characters"}
    return {}


class Search:
    def __init__(self, access: Access, conversations: ConversationRepo, index: MessageSearch) -> None:
        self._access = access
        self._conversations = conversations
        self._index = index

    async def messages(
        self,
        user_id: int,
        query: str,
        *,
        conversation_id: int | None,
        cursor: str | None,
        limit: int,
        by_operator: bool = False,
    ) -> Page[MessageHit]:
        problems = query_problems(query)
        if not 1 <= limit <= MAX_LIMIT:
            problems["limit"] = f"1-{MAX_LIMIT}"
        errors.raise_for_fields(problems)
        conversation_ids: list[int] | Literal[Scope.EVERYWHERE]
        if conversation_id is not None:
            if by_operator:
                await self._access.require_conversation(conversation_id)
            else:
                # Read fresh, not from the gates' cache: one who just left must not find what they no longer see.
                await self._access.require_member(conversation_id, user_id)
            conversation_ids = [conversation_id]
        elif by_operator:
            conversation_ids = EVERYWHERE
        else:
            conversation_ids = [state.conversation_id for state in await self._conversations.states(user_id, None)]
        try:
            return await self._index.search_messages(
                MessageQuery(query.strip(), conversation_ids, cursor=cursor or None, limit=limit)
            )
        except SearchUnavailable:
            raise common_errors.search_unavailable("message search is unavailable; try again shortly") from None
