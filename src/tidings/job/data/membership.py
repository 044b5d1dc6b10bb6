"""Audiences of conversations: chat's audience read (``chat.store.members``), cached briefly in this process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from tidings.job.biz.errors import Unavailable
from tidings.job.biz.push import Audience
from tidings.pkg import db
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo
from tidings.service.chat.store.members import kinds_and_members
from tidings.service.chat.tables import KIND_DIRECT


class ConversationSource(Protocol):
    async def kinds_and_members(self, conversation_ids: Sequence[int]) -> Mapping[int, tuple[int, Sequence[int]]]:
        """Each existing conversation's kind (``KIND_*``) and active member ids; unknown ids are left out."""
        ...


class SQLConversationSource(SQLRepo):
    async def kinds_and_members(self, conversation_ids: Sequence[int]) -> Mapping[int, tuple[int, Sequence[int]]]:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                return await kinds_and_members(conn, conversation_ids)


class CachedMembership:
    """Audiences read from ``conversations``, one query per batch of misses, cached for ``ttl_s``.

    With the default ``ttl_s`` of 0 every batch reads its audiences fresh: a member removed before a message was
    sent never hears it (nor any later event of the conversation), as API.md promises. A positive ``ttl_s`` saves
    reads in huge, busy groups at a price: a join or leave reaches push only within ``ttl_s``, so a departed member
    may hear up to ``ttl_s`` more (a newcomer's missed messages are in history). The cache holds at most
    ``max_members`` member ids in all (least recently used out first), so a few huge groups cannot grow it without
    bound.
    """

    def __init__(
        self,
        conversations: ConversationSource,
        *,
        ttl_s: float = 0.0,
        max_members: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conversations = conversations
        self._ttl_s = ttl_s
        self._max_members = max_members
        self._clock = clock
        self._entries: OrderedDict[int, tuple[float, Audience]] = OrderedDict()
        self._size = 0

    async def audiences(self, conversation_ids: Sequence[int]) -> dict[int, Audience]:
        now = self._clock()
        found: dict[int, Audience] = {}
        missing: list[int] = []
        for conversation_id in dict.fromkeys(conversation_ids):
            entry = self._entries.get(conversation_id)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(conversation_id)
                found[conversation_id] = entry[1]
            else:
                missing.append(conversation_id)
        if missing:
            for conversation_id, (kind, member_ids) in (await self._conversations.kinds_and_members(missing)).items():
                audience = Audience(kind == KIND_DIRECT, frozenset(member_ids))
                found[conversation_id] = audience
                self._put(conversation_id, now + self._ttl_s, audience)
        return found

    def _put(self, conversation_id: int, expires_at: float, audience: Audience) -> None:
        old = self._entries.pop(conversation_id, None)
        if old is not None:
            self._size -= len(old[1].member_ids)
        if len(audience.member_ids) > self._max_members:
            return  # bigger than the whole cache: read every time rather than evict everything
        self._entries[conversation_id] = (expires_at, audience)
        self._size += len(audience.member_ids)
        while self._size > self._max_members:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._size -= len(evicted.member_ids)
