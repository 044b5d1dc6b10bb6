"""Reconcile: the cached states of conversations checked against the database, and what drifted repaired.

Caches are kept right by deleting keys after each write (and again after the replica-lag window); a delete that
was lost (Redis unreachable at that moment, a crash between the commit and the delete) or a value damaged in the
store leaves an entry that disagrees with the database until its time to live runs out. This task walks every
conversation, a bounded number per run, from where the last run stopped (its checkpoint), asks the cache which
entries disagree with the database, and evicts them, so the next read loads the truth. A write in flight makes a
cache and the database disagree for a moment; so a disagreement is checked again after ``settle_s`` (longer than
the delayed delete) against a fresh read, and only one that is still there counts as drift.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tidings.pkg.logger import Logger
from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.biz.runs import Checkpoint


@dataclass(frozen=True)
class ConversationState:
    """A conversation as the database has it: what its cached entries must agree with."""

    id: int
    max_seq: int
    updated_at_ms: int
    # Each current member's read seq.
    reads: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Drift:
    """A cached entry that disagrees with the database: which cache, and whose entry (a conversation's, or one of
    its members' for per-member entries such as read marks)."""

    cache: str
    conversation_id: int
    user_id: int | None = None


class Conversations(Protocol):
    async def after(self, conversation_id: int, limit: int) -> list[ConversationState]:
        """Up to ``limit`` conversations with ids above ``conversation_id``, ascending."""
        ...

    async def states(self, conversation_ids: Sequence[int]) -> list[ConversationState]:
        """The states of these conversations, read now."""
        ...


class CachedStates(Protocol):
    async def drift(self, states: Sequence[ConversationState]) -> list[Drift]:
        """The cached entries of these conversations that disagree with ``states`` (an absent entry agrees)."""
        ...

    async def evict(self, drifts: Sequence[Drift]) -> None:
        """Delete the entries: their next read loads them from the database."""
        ...


class Reconcile:
    def __init__(
        self,
        conversations: Conversations,
        cached: CachedStates,
        checkpoint: Checkpoint,
        logger: Logger,
        *,
        batch: int = 500,
        max_batches: int = 100,
        settle_s: float = 2.0,
    ) -> None:
        self._conversations = conversations
        self._cached = cached
        self._checkpoint = checkpoint
        self._log = logger
        self._batch = batch
        self._max_batches = max_batches
        self._settle_s = settle_s

    async def run(self, progress: Progress = NO_PROGRESS) -> int:
        """One turn (up to ``max_batches`` batches from the checkpoint): how many entries were repaired
        (``progress`` counts the conversations checked: how many there are, it does not ask)."""
        progress.start(None)
        return await self._walk(repair=True, progress=progress)

    async def preview(self) -> int:
        """How many entries a run now would repair; evicts nothing and leaves the checkpoint where it is."""
        return await self._walk(repair=False)

    async def _walk(self, *, repair: bool, progress: Progress = NO_PROGRESS) -> int:
        checkpoint = await self._checkpoint.load_checkpoint()
        after = int(checkpoint) if checkpoint.isdigit() else 0
        repaired: Counter[str] = Counter()
        checked = 0
        for _ in range(self._max_batches):
            states = await self._conversations.after(after, self._batch)
            checked += len(states)
            progress.advance(len(states))
            drifts = await self._confirmed(states)
            if repair and drifts:
                await self._cached.evict(drifts)
            repaired.update(drift.cache for drift in drifts)
            # A short batch is the end of the table: the next run starts over from the first conversation.
            after = states[-1].id if len(states) == self._batch else 0
            if repair:
                await self._checkpoint.save_checkpoint(str(after))
            if after == 0:
                break
        if repair:
            self._log.info("reconcile checked the cached states", conversations=checked, repaired=dict(repaired))
        return sum(repaired.values())

    async def _confirmed(self, states: Sequence[ConversationState]) -> list[Drift]:
        """The drift among ``states`` that is still there after ``settle_s``, against a fresh read."""
        if not states:
            return []
        suspects = await self._cached.drift(states)
        if not suspects:
            return []
        await asyncio.sleep(self._settle_s)
        fresh = await self._conversations.states(sorted({drift.conversation_id for drift in suspects}))
        again = set(await self._cached.drift(fresh))
        return [drift for drift in suspects if drift in again]
