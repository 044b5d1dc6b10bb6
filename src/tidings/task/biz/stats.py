"""Stats: hourly and daily activity rollups (``tidings.task.stats``) computed from the source tables.

Every run recomputes each bucket it touches from the source and replaces its row, so a rerun, a replay or a run
after a crash gives the same numbers. A bucket is complete once it ended more than ``settle_s`` ago (late messages,
stored by the persist job after their creation time, have arrived by then); each grain keeps a checkpoint, the end
of its last complete bucket, moved in the same transaction as that bucket's row. A run starts at the checkpoint
(the first run at the earliest creation time in the sources) and computes at most ``max_buckets`` buckets per
grain, up to the bucket still open: a long backfill goes on at the next runs, where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.stats import Activity, ConversationVolume, Grain

# How many of a day's busiest conversations are kept.
TOP_CONVERSATIONS = 10


@dataclass(frozen=True)
class Counts:
    """What the sources hold for one time range."""

    messages: int
    active_senders: int
    new_users: int
    new_conversations: int


class ActivitySource(Protocol):
    """The tables the counts come from (chat's messages and conversations, account's users)."""

    async def first_activity_ms(self) -> int | None:
        """The earliest creation time of a message, user or conversation; ``None`` when there is none."""
        ...

    async def counts(self, start_ms: int, end_ms: int) -> Counts:
        """What was created in ``[start_ms, end_ms)``."""
        ...

    async def top_conversations(self, start_ms: int, end_ms: int, limit: int) -> list[ConversationVolume]:
        """The ``limit`` conversations with the most messages created in ``[start_ms, end_ms)``, busiest first,
        ties broken by the lower id."""
        ...


class RollupStore(Protocol):
    """The rollups' tables."""

    async def checkpoint(self, grain: Grain) -> int | None:
        """Where ``grain``'s next run starts (every bucket before it is complete), or ``None`` before its first."""
        ...

    async def save(
        self,
        activity: Activity,
        top: Sequence[ConversationVolume] | None,
        *,
        computed_at_ms: int,
    ) -> None:
        """Replace the bucket's row and, given ``top`` (a day's), the day's busiest conversations; a complete
        bucket moves the grain's checkpoint to its end. All of it at once or nothing."""
        ...


@dataclass(frozen=True)
class Bucket:
    grain: Grain
    start_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.grain.ms


class StatsRollup:
    """The ``stats`` task: hourly and daily activity, recomputed from the checkpoint to the open bucket."""

    def __init__(
        self,
        source: ActivitySource,
        rollups: RollupStore,
        now_ms: Callable[[], int],
        *,
        settle_s: float,
        max_buckets: int,
        top: int = TOP_CONVERSATIONS,
    ) -> None:
        self._source = source
        self._rollups = rollups
        self._now_ms = now_ms
        self._settle_ms = int(settle_s * 1000)
        self._max_buckets = max_buckets
        self._top = top

    async def preview(self) -> int:
        """How many buckets a run now would compute (and store); stores nothing."""
        return len(await self._plan(self._now_ms()))

    async def run(self, progress: Progress = NO_PROGRESS) -> int:
        """One turn; how many buckets were computed and stored."""
        now = self._now_ms()
        buckets = await self._plan(now)
        progress.start(len(buckets))
        for bucket in buckets:
            counts = await self._source.counts(bucket.start_ms, bucket.end_ms)
            top = (
                await self._source.top_conversations(bucket.start_ms, bucket.end_ms, self._top)
                if bucket.grain is Grain.DAY
                else None
            )
            activity = Activity(
                bucket.grain,
                bucket.start_ms,
                counts.messages,
                counts.active_senders,
                counts.new_users,
                counts.new_conversations,
                complete=bucket.end_ms <= now - self._settle_ms,
            )
            await self._rollups.save(activity, top, computed_at_ms=now)
            progress.advance(1)
        return len(buckets)

    async def _plan(self, now: int) -> list[Bucket]:
        """The buckets of each grain from its checkpoint to the one holding ``now``, at most ``max_buckets`` each."""
        buckets: list[Bucket] = []
        first: int | None = None
        for grain in (Grain.HOUR, Grain.DAY):
            start = await self._rollups.checkpoint(grain)
            if start is None:
                if first is None:
                    first = await self._source.first_activity_ms()
                start = grain.start_of(min(first, now) if first is not None else now)
            last = grain.start_of(now)
            count = min(self._max_buckets, max(0, (last - start) // grain.ms + 1))
            buckets.extend(Bucket(grain, start + n * grain.ms) for n in range(count))
        return buckets
