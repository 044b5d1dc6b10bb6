"""The reconcile task's adapters: conversations' states read from chat's tables, and chat's cached entries of them
(``chat.store``: the head, members and read caches, and the persisted max seq in Redis) compared and evicted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from sqlalchemy import select

from tidings.pkg import db
from tidings.pkg.cache import Cached
from tidings.pkg.cache.kit import CacheKit
from tidings.pkg.errors import translated
from tidings.pkg.repo import SQLRepo, chunks
from tidings.service.chat.store.heads import heads_cache
from tidings.service.chat.store.history import RedisHistoryCache
from tidings.service.chat.store.states import members_cache, reads_cache
from tidings.service.chat.tables import conversation_members as members
from tidings.service.chat.tables import conversations
from tidings.task.biz.errors import Unavailable
from tidings.task.biz.reconcile import ConversationState, Drift


class SQLConversations(SQLRepo):
    async def after(self, conversation_id: int, limit: int) -> list[ConversationState]:
        query = _STATES.where(conversations.c.id > conversation_id).order_by(conversations.c.id).limit(limit)
        return await self._states(query)

    async def states(self, conversation_ids: Sequence[int]) -> list[ConversationState]:
        found: list[ConversationState] = []
        for chunk in chunks(list(conversation_ids)):
            found += await self._states(_STATES.where(conversations.c.id.in_(chunk)))
        return found

    async def _states(self, query: Any) -> list[ConversationState]:
        with translated(db.UNREACHABLE, Unavailable, "database"):
            async with self._read() as conn:
                heads = list(await conn.execute(query))
                reads: dict[int, dict[int, int]] = {row.id: {} for row in heads}
                for chunk in chunks(list(reads)):
                    rows = await conn.execute(
                        select(members.c.conversation_id, members.c.user_id, members.c.read_seq).where(
                            members.c.conversation_id.in_(chunk), members.c.left_at_ms.is_(None)
                        )
                    )
                    for conversation_id, user_id, read_seq in rows:
                        reads[conversation_id][user_id] = read_seq
        return [ConversationState(row.id, row.max_seq, row.updated_at_ms, reads[row.id]) for row in heads]


_STATES = select(conversations.c.id, conversations.c.max_seq, conversations.c.updated_at_ms)


class ReconcileMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.repaired = Counter(
            "tidings_task_reconcile_repaired",
            "Cached entries the reconcile task found disagreeing with the database and evicted, by cache.",
            ["cache"],
            registry=registry,
        )


class CachedChatStates:
    """Chat's cached entries of conversation states, in the shared cache (Redis) chat and its jobs use."""

    def __init__(
        self, kit: CacheKit, history: RedisHistoryCache, metrics: ReconcileMetrics, *, prefix: str = "chat"
    ) -> None:
        self._heads = heads_cache(kit, prefix)
        self._members = members_cache(kit, prefix)
        self._reads = reads_cache(kit, prefix)
        self._history = history
        self._metrics = metrics

    async def drift(self, states: Sequence[ConversationState]) -> list[Drift]:
        by_id = {state.id: state for state in states}
        ids = list(by_id)
        read_keys = [(state.id, user_id) for state in states for user_id in state.reads]
        heads = await self._heads.peek_many(ids)
        member_lists = await self._members.peek_many(ids)
        reads = await self._reads.peek_many(read_keys)
        max_seqs = await self._history.max_seqs(ids)
        drifts = [
            Drift("head", cid)
            for cid, cached in heads.items()
            if _differs(cached, (by_id[cid].max_seq, by_id[cid].updated_at_ms))
        ]
        drifts += [
            Drift("members", cid)
            for cid, cached in member_lists.items()
            if _differs(cached, tuple(sorted(by_id[cid].reads)))
        ]
        drifts += [
            Drift("read", cid, user_id)
            for (cid, user_id), cached in reads.items()
            if _differs(cached, by_id[cid].reads[user_id])
        ]
        drifts += [Drift("max_seq", cid) for cid, max_seq in max_seqs.items() if max_seq != by_id[cid].max_seq]
        return drifts

    async def evict(self, drifts: Sequence[Drift]) -> None:
        def of(cache: str) -> list[Drift]:
            return [drift for drift in drifts if drift.cache == cache]

        await self._heads.invalidate([drift.conversation_id for drift in of("head")])
        await self._members.invalidate([drift.conversation_id for drift in of("members")])
        await self._reads.invalidate([(drift.conversation_id, drift.user_id or 0) for drift in of("read")])
        await self._history.forget_max_seqs([drift.conversation_id for drift in of("max_seq")])
        for drift in drifts:
            self._metrics.repaired.labels(drift.cache).inc()


class NoCachedStates:
    """The embedded mode: chat's caches live in chat's own process memory, where no other module reaches; the
    task has nothing to check."""

    async def drift(self, states: Sequence[ConversationState]) -> list[Drift]:
        return []

    async def evict(self, drifts: Sequence[Drift]) -> None:
        return None


def _differs(cached: Cached[Any], truth: Any) -> bool:
    """A damaged entry, the null sentinel where the database has a row, or another value."""
    return cached.corrupt or cached.value != truth
