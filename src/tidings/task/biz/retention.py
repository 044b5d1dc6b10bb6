"""Retention of messages: each conversation's messages older than its kind's age deleted, with their search
documents and cached windows, a bounded batch at a time.

A conversation loses its oldest messages as a prefix of its seqs (``chat.store.retention``), so a client always sees
its history contiguous from the new first seq, also when the runner dies midway; the next run goes on from the
task's checkpoint (the last conversation done) and deletes what is left, idempotently. The search documents of a
batch go first: were the runner to die between the two, the index would lack a few messages that are about to go
anyway, rather than find messages the history no longer has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.biz.runs import Checkpoint


class History(Protocol):
    async def conversations_after(self, conversation_id: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` conversations above ``conversation_id``, ascending, with their kinds."""
        ...

    async def expired_through(self, conversation_id: int, before_ms: int, limit: int) -> int | None:
        """The last seq of the conversation's oldest messages created before ``before_ms`` (among its first
        ``limit``), or ``None``."""
        ...

    async def delete_through(self, conversation_id: int, seq: int) -> int:
        """Delete the conversation's messages up to ``seq``; how many."""
        ...

    async def count_older(self, kind: str, before_ms: int) -> int:
        """How many messages of conversations of ``kind`` were created before ``before_ms``."""
        ...


class SearchDocuments(Protocol):
    async def delete_below(self, conversation_id: int, seq: int) -> int:
        """Remove the conversation's message documents below ``seq``."""
        ...


class RecentWindows(Protocol):
    async def forget(self, conversation_id: int) -> None:
        """Drop the conversation's cached window of newest messages (it may hold deleted ones)."""
        ...


class MessageRetention:
    def __init__(
        self,
        history: History,
        search: SearchDocuments,
        windows: RecentWindows,
        checkpoint: Checkpoint,
        now_ms: Callable[[], int],
        *,
        keep_s: Mapping[str, float],
        batch: int = 1000,
        max_batches: int = 100,
        pause_s: float = 0.0,
    ) -> None:
        self._history = history
        self._search = search
        self._windows = windows
        self._checkpoint = checkpoint
        self._now_ms = now_ms
        # By conversation kind; a kind not named keeps its messages.
        self._keep_ms = {kind: int(seconds * 1000) for kind, seconds in keep_s.items()}
        self._batch = batch
        self._max_batches = max_batches
        self._pause_s = pause_s

    async def run(self, progress: Progress = NO_PROGRESS) -> int:
        """One turn (up to ``max_batches`` batches of conversations from the checkpoint): messages deleted
        (``progress`` over the conversations looked at; how many there are, a run cannot tell in advance)."""
        if not self._keep_ms:
            return 0
        progress.start(None)
        checkpoint = await self._checkpoint.load_checkpoint()
        after = int(checkpoint) if checkpoint.isdigit() else 0
        now = self._now_ms()
        deleted = 0
        for _ in range(self._max_batches):
            found = await self._history.conversations_after(after, self._batch)
            for conversation_id, kind in found:
                if kind in self._keep_ms:
                    deleted += await self._expire(conversation_id, now - self._keep_ms[kind])
            progress.advance(len(found))
            # A short batch is the end of the table: the next run starts over from the first conversation.
            after = found[-1][0] if len(found) == self._batch else 0
            await self._checkpoint.save_checkpoint(str(after))
            if after == 0:
                break
        return deleted

    async def preview(self) -> int:
        """How many messages are past their age (what runs would delete, however many turns that takes); deletes
        nothing."""
        now = self._now_ms()
        return sum([await self._history.count_older(kind, now - keep_ms) for kind, keep_ms in self._keep_ms.items()])

    async def _expire(self, conversation_id: int, before_ms: int) -> int:
        deleted = 0
        while True:
            through = await self._history.expired_through(conversation_id, before_ms, self._batch)
            if through is None:
                return deleted
            await self._search.delete_below(conversation_id, through + 1)
            deleted += await self._history.delete_through(conversation_id, through)
            await self._windows.forget(conversation_id)
            if self._pause_s:
                await asyncio.sleep(self._pause_s)
