"""Dead letters: what the consumers gave up on (``<topic>.dlq``), reported per topic, and replayed on demand.

The report counts each dead-letter topic's records, by the reason the consumer gave, with the oldest one's time and
how many were replayed. A replay publishes the records an operator chose (a topic, and optionally reasons and
offsets) again to their source topic, as they were. It is idempotent: the replay log keeps each record replayed
(by its place in the dead-letter topic), and a record found there is not published again. (A consumer group of the
task's own on the dead-letter topics would keep only how far it read: the records an operator left out, of another
reason or at other offsets, would lie behind its offset and could never be replayed.) A record is logged as
replayed once it was published, so a run that dies between the two publishes it again at the next replay; the
consumers take that in their stride (they are idempotent, as for any redelivery). A replayed record that fails
again is dead-lettered again, as a new record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol

from tidings.task.biz.progress import NO_PROGRESS, Progress

# How many of the records a replay published (or would publish) its result lists.
SHOWN = 100


@dataclass(frozen=True)
class DeadLetter:
    """A record of a dead-letter topic: where it is, where it came from and why it died, and the original record's
    key, value and own headers (what a replay publishes)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    origin_topic: str
    group: str
    reason: str
    error: str
    key: bytes = b""
    value: bytes = b""
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position(self) -> tuple[int, int]:
        return self.partition, self.offset


class MissingTopic(Exception):
    """The dead-letter topic does not exist: no consumer of its source topic has started yet."""


class BadSelection(ValueError):
    """A replay's choice of records that cannot be: ``field`` names the option."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class DeadLetterLog(Protocol):
    """The dead-letter topics on the bus."""

    def read(self, topic: str) -> AsyncGenerator[list[DeadLetter], None]:
        """Every dead letter ``topic`` holds now, in batches, each partition in offset order (``MissingTopic`` if
        there is no such topic)."""
        ...

    async def republish(self, letters: Sequence[DeadLetter]) -> None:
        """Publish each letter's original record to its source topic, in order; durable once this returns."""
        ...


class ReplayLog(Protocol):
    """The records replayed so far, by dead-letter topic and position."""

    async def replayed(self, topic: str, positions: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of ``positions`` (partition, offset) of ``topic`` were replayed."""
        ...

    async def record(self, letters: Sequence[DeadLetter], replayed_at_ms: int) -> None:
        """Remember ``letters`` as replayed, all at once."""
        ...


@dataclass(frozen=True)
class OffsetRange:
    """Offsets ``first`` to ``last`` (inclusive) of one partition of a dead-letter topic."""

    partition: int
    first: int
    last: int

    def holds(self, letter: DeadLetter) -> bool:
        return letter.partition == self.partition and self.first <= letter.offset <= self.last


@dataclass(frozen=True)
class Selection:
    """The records of ``topic`` a replay publishes: of any of ``reasons`` and within any of ``offsets`` (each empty:
    no restriction), at most ``limit`` of them (``None``: all)."""

    topic: str
    reasons: frozenset[str] = frozenset()
    offsets: tuple[OffsetRange, ...] = ()
    limit: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        return not self.offsets or any(offsets.holds(letter) for offsets in self.offsets)


@dataclass(frozen=True)
class TopicReport:
    """One dead-letter topic: how many records it holds, by reason, the oldest one's time (when it was
    dead-lettered) and how many of them were replayed. ``exists`` is false while no consumer has created it."""

    topic: str
    exists: bool = True
    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    oldest_ms: int | None = None
    replayed: int = 0


@dataclass(frozen=True)
class Report:
    topics: list[TopicReport]

    @property
    def total(self) -> int:
        return sum(topic.count for topic in self.topics)


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did (or, ``dry_run``, would do): ``replayed`` records published, the first ``SHOWN`` of them
    in ``shown``, and ``already`` chosen records skipped because they had been replayed before."""

    selection: Selection
    dry_run: bool
    replayed: int = 0
    already: int = 0
    shown: list[DeadLetter] = field(default_factory=list)


class DeadLetters:
    """The ``dead-letters`` task over the dead-letter ``topics`` of every consumed topic."""

    def __init__(
        self,
        log: DeadLetterLog,
        replays: ReplayLog,
        topics: Sequence[str],
        now_ms: Callable[[], int],
    ) -> None:
        self._log = log
        self._replays = replays
        self._topics = list(topics)
        self._now_ms = now_ms

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    def check(self, selection: Selection) -> None:
        """``BadSelection`` for a replay that cannot be: an unknown topic, offsets backwards, a limit below 1."""
        if selection.topic not in self._topics:
            known = ", ".join(self._topics)
            raise BadSelection("--topic", f"no dead-letter topic {selection.topic!r} (known: {known})")
        for offsets in selection.offsets:
            if offsets.partition < 0 or offsets.first < 0 or offsets.last < offsets.first:
                raise BadSelection("--offset", f"{offsets.partition}:{offsets.first}-{offsets.last} is no range")
        if selection.limit is not None and selection.limit < 1:
            raise BadSelection("--limit", f"must be at least 1, got {selection.limit}")

    async def report(self, progress: Progress = NO_PROGRESS) -> Report:
        """Each dead-letter topic as it is now; reads them whole, changes nothing (``progress`` by topic)."""
        progress.start(len(self._topics))
        topics = []
        for topic in self._topics:
            topics.append(await self._report(topic))
            progress.advance(1)
        return Report(topics)

    async def _report(self, topic: str) -> TopicReport:
        count = replayed = 0
        reasons: Counter[str] = Counter()
        oldest: int | None = None
        try:
            async with aclosing(self._log.read(topic)) as batches:
                async for letters in batches:
                    count += len(letters)
                    reasons.update(letter.reason or "unknown" for letter in letters)
                    first = min(letter.timestamp_ms for letter in letters)
                    oldest = first if oldest is None else min(oldest, first)
                    replayed += len(await self._replays.replayed(topic, [letter.position for letter in letters]))
        except MissingTopic:
            return TopicReport(topic, exists=False)
        return TopicReport(topic, True, count, dict(sorted(reasons.items())), oldest, replayed)

    async def replay(
        self, selection: Selection, *, dry_run: bool = False, progress: Progress = NO_PROGRESS
    ) -> ReplayResult:
        """Publish the chosen records not replayed before to their source topics (``dry_run``: only say which), one
        batch at a time: published, then logged as replayed (``progress`` by record, over the limit if any)."""
        self.check(selection)
        progress.start(selection.limit)
        replayed = already = 0
        shown: list[DeadLetter] = []
        try:
            async with aclosing(self._log.read(selection.topic)) as batches:
                async for letters in batches:
                    chosen = [letter for letter in letters if selection.matches(letter)]
                    if not chosen:
                        continue
                    done = await self._replays.replayed(selection.topic, [letter.position for letter in chosen])
                    fresh = [letter for letter in chosen if letter.position not in done]
                    already += len(chosen) - len(fresh)
                    if selection.limit is not None:
                        fresh = fresh[: selection.limit - replayed]
                    if fresh and not dry_run:
                        await self._log.republish(fresh)
                        await self._replays.record(fresh, self._now_ms())
                    replayed += len(fresh)
                    progress.advance(len(fresh))
                    shown.extend(fresh[: SHOWN - len(shown)])
                    if selection.limit is not None and replayed >= selection.limit:
                        break
        except MissingTopic:
            pass  # nothing to replay: no consumer ever dead-lettered a record of its source topic
        return ReplayResult(selection, dry_run, replayed, already, shown)
