"""``OrderedConsumer``: a consumer group member that handles keys in parallel, each key in offset order.

Written by hand because neither aiokafka nor any library we use offers this: records are hashed by key to one
of N in-process queues, each drained by one worker task, so one worker owns a conversation (per-key order) while
different keys run in parallel. Offsets are committed only up to each partition's low watermark (every record
below it handled), periodically, when partitions are revoked, and on stop. A failing batch is retried with
bounded exponential backoff, then each record alone; a record that still fails, or whose event version the
handler does not know, goes to ``<topic>.dlq`` with headers naming its origin: counted and logged, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from tidings.pkg import log, trace
from tidings.pkg.bus.deadletter import dead_letter_event, dead_letter_topic
from tidings.pkg.bus.metrics import ConsumerMetrics
from tidings.pkg.bus.ports import EventBus, Subscription
from tidings.pkg.bus.progress import PartitionProgress
from tidings.pkg.bus.records import BusError, CommitFailed, Record, TopicPartition, TopicSpec

Handler = Callable[[list[Record]], Awaitable[None]]


class UnknownEventVersion(Exception):
    """Raised by a handler for a record whose event type or schema version it does not know.

    The record goes to the dead-letter topic at once (retrying cannot teach the handler a new version) and the
    rest of the batch is handed to the handler again.
    """

    def __init__(self, record: Record, detail: str) -> None:
        super().__init__(detail)
        self.record = record


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """Tuning of an ``OrderedConsumer``; the defaults suit a persist-style job."""

    workers: int = 8
    # A handler call gets at most batch_size records, gathered for at most batch_linger_s.
    batch_size: int = 200
    batch_linger_s: float = 0.005
    # How long a fetch may wait for more records (``EventBus.subscribe``): fewer, fuller fetches for consumers
    # whose latency matters less than their cost per record.
    fetch_wait_s: float = 0.0
    # Fetching pauses when a worker queue holds queue_size records (it may overshoot by one poll) and resumes at half.
    queue_size: int = 1000
    max_poll_records: int = 500
    poll_timeout_s: float = 0.5
    commit_interval_s: float = 1.0
    # Attempts of a batch, then of each of its records alone, before a record is dead-lettered.
    max_attempts: int = 4
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    # How long revocation and stop wait for in-flight records before giving them up to redelivery; below the
    # app's stop_timeout_s, so a stop still has time to commit.
    drain_timeout_s: float = 5.0
    # Errors that mean "the world is down", not "this record is bad" (a database outage): retried without end,
    # never dead-lettered; fetching pauses meanwhile as the queues fill.
    transient: tuple[type[Exception], ...] = ()
    dead_letter_partitions: int = 1

    def __post_init__(self) -> None:
        counts = ("workers", "batch_size", "queue_size", "max_poll_records", "max_attempts", "dead_letter_partitions")
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"ConsumerOptions.{name} must be >= 1, got {getattr(self, name)}")

    def backoff_s(self, attempt: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, attempt - 1)))


@dataclass(slots=True)
class _Item:
    record: Record
    progress: PartitionProgress


class OrderedConsumer:
    """A lifecycle component (``start``/``stop``) that feeds one consumer group's records to ``handler``.

    ``handler`` receives records of one worker queue (several keys possibly, each in offset order) and must be
    idempotent: delivery is at least once (after a crash, records past the last commit come again).
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        metrics: ConsumerMetrics,
        options: ConsumerOptions | None = None,
    ) -> None:
        self._bus = bus
        self._system = str(getattr(bus, "system", "unknown"))
        self._group = group
        self._topics = list(topics)
        self._handler = handler
        self._metrics = metrics
        self._options = options or ConsumerOptions()
        self._log = log.get("bus.consumer").bind(group=group)
        self._queues: list[asyncio.Queue[_Item]] = [asyncio.Queue() for _ in range(self._options.workers)]
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._subscription: Subscription | None = None
        self._runner: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        # Workers notify after every batch; drains wait on it.
        self._progressed = asyncio.Condition()
        # One commit at a time, computed inside the lock, so an older commit never lands after a newer one.
        self._commit_lock = asyncio.Lock()
        self._paused = False
        self._caught_up_at = time.monotonic()

    @property
    def name(self) -> str:
        return f"consumer {self._group}"

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Make sure the dead-letter topics exist, join the group and start polling."""
        await self._bus.ensure_topics(
            [TopicSpec(dead_letter_topic(topic), self._options.dead_letter_partitions) for topic in self._topics]
        )
        self._metrics.commit_age.labels(self._group).set_function(lambda: time.monotonic() - self._caught_up_at)
        self._subscription = await self._bus.subscribe(
            self._group, self._topics, listener=self, fetch_wait_s=self._options.fetch_wait_s
        )
        self._runner = asyncio.create_task(self._run(), name=self.name)
        self._log.info("consumer started", topics=self._topics, workers=self._options.workers)

    async def stop(self) -> None:
        """Stop fetching, let in-flight records finish (up to ``drain_timeout_s``), commit, leave the group."""
        subscription, runner = self._subscription, self._runner
        if subscription is None or runner is None:
            return
        try:
            if self._poller is not None:
                self._poller.cancel()
            await self._drain(self._progress.values())
        finally:
            # Also when the caller's own stop deadline cancels us: no worker outlives the consumer.
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            try:
                await self._commit(self._progress.values())
            finally:
                self._subscription = self._runner = None
                await subscription.close()
        self._log.info("consumer stopped")
        if self._failure is not None:
            raise BusError(f"{self.name} had failed: {self._failure!r}") from self._failure

    async def probe(self) -> None:
        """A health check: raises once the consumer has stopped working (for ``health.Check``)."""
        if self._failure is not None:
            raise BusError(f"{self.name} failed: {self._failure!r}")
        if self._runner is None or self._runner.done():
            raise BusError(f"{self.name} is not running")

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for index, queue in enumerate(self._queues):
                    group.create_task(self._work(queue), name=f"{self.name} worker {index}")
                group.create_task(self._commit_periodically(), name=f"{self.name} committer")
                self._poller = group.create_task(self._poll(), name=f"{self.name} poller")
        except Exception as failed:  # a bug, not a bad record: those never leave the worker
            self._failure = failed
            self._log.exception("consumer failed; it handles nothing more until restarted")

    # -- rebalance ------------------------------------------------------------------------------------------------

    async def on_assigned(self, partitions: frozenset[TopicPartition]) -> None:
        for tp in partitions:
            # Kept if still ours: the subscription may fetch again from the last commit; accept() skips repeats.
            if tp not in self._progress:
                self._progress[tp] = PartitionProgress(tp)
        self._log.info("partitions assigned", partitions=sorted(partitions))

    async def on_revoked(self, partitions: frozenset[TopicPartition]) -> None:
        # Out of the map first: records of these partitions polled from now on are not taken.
        revoked = [self._progress.pop(tp) for tp in partitions if tp in self._progress]
        await self._drain(revoked)
        await self._commit(revoked)
        for progress in revoked:
            progress.live = False
            self._metrics.lag.remove(progress.tp.topic, str(progress.tp.partition), self._group)
        if partitions:
            self._log.info("partitions revoked", partitions=sorted(partitions))

    async def _drain(self, progresses: Iterable[PartitionProgress]) -> None:
        waiting = list(progresses)
        try:
            async with asyncio.timeout(self._options.drain_timeout_s), self._progressed:
                await self._progressed.wait_for(lambda: all(p.pending == 0 for p in waiting))
        except TimeoutError:
            left = sum(p.pending for p in waiting)
            self._log.warning("drain timed out; unfinished records will be delivered again", records=left)

    # -- fetching -------------------------------------------------------------------------------------------------

    async def _poll(self) -> None:
        attempt = 0
        while True:
            timeout_s = self._options.poll_timeout_s
            if self._apply_backpressure():
                # Resume as soon as the workers make room, not a poll timeout later; the short poll that follows
                # keeps the member alive in its group while nothing is fetched.
                await self._room(timeout_s)
                timeout_s = 0
            try:
                records = await self.subscription.poll(self._options.max_poll_records, timeout_s)
            except Exception as exc:  # a broker or file hiccup: back off and poll again
                attempt += 1
                self._log.warning("poll failed", error=repr(exc), attempt=attempt)
                await asyncio.sleep(self._options.backoff_s(attempt))
                continue
            attempt = 0
            for record in records:
                self._dispatch(record)

    def _dispatch(self, record: Record) -> None:
        progress = self._progress.get(record.topic_partition)
        # Not ours (fetched around a rebalance) or already taken: skipping is safe, because the commit point only
        # moves over records that were taken, so whoever owns the partition reads this one again.
        if progress is None or not progress.accept(record.offset):
            return
        # crc32, not murmur2: the partition already came from murmur2, and reusing it would tie queues to partitions.
        queue = self._queues[zlib.crc32(record.key) % len(self._queues)]
        queue.put_nowait(_Item(record, progress))

    def _apply_backpressure(self) -> bool:
        """Pause fetching while a worker queue is full, resume at half; ``True`` while paused."""
        fullest = max(queue.qsize() for queue in self._queues)
        if fullest >= self._options.queue_size:
            self._paused = True
        elif fullest <= self._options.queue_size // 2:
            self._paused = False
        assignment = self.subscription.assignment()
        # Applied on every poll: a rebalance hands out partitions unpaused.
        if self._paused:
            self.subscription.pause(assignment)
        else:
            self.subscription.resume(assignment)
        self._metrics.paused.labels(self._group).set(1 if self._paused else 0)
        return self._paused

    async def _room(self, timeout_s: float) -> None:
        resume_at = self._options.queue_size // 2
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._progressed:
                await self._progressed.wait_for(lambda: all(queue.qsize() <= resume_at for queue in self._queues))

    # -- handling -------------------------------------------------------------------------------------------------

    async def _work(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            batch = [item for item in await self._next_batch(queue) if item.progress.live]
            if batch:
                await self._process([item.record for item in batch])
                for item in batch:
                    item.progress.handled(item.record.offset)
            async with self._progressed:
                self._progressed.notify_all()

    async def _next_batch(self, queue: asyncio.Queue[_Item]) -> list[_Item]:
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self._options.batch_linger_s
        while len(batch) < self._options.batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    batch.append(await queue.get())
            except TimeoutError:
                break
        return batch

    async def _process(self, records: list[Record]) -> None:
        """Handle ``records`` or dead-letter the ones that cannot be; returns when each is one or the other."""
        failure = await self._attempt(records)
        if failure is None:
            return
        if len(records) == 1:
            await self._dead_letter(records[0], "handler_error", failure)
            return
        # Find the bad ones: every record alone, in order, so one poison record does not sink its neighbours.
        for record in list(records):
            single = [record]
            failure = await self._attempt(single)
            if failure is not None:
                await self._dead_letter(record, "handler_error", failure)

    async def _attempt(self, records: list[Record]) -> Exception | None:
        """Call the handler with retries; ``None`` once it succeeds, else the last error.

        Records the handler reports as ``UnknownEventVersion`` are dead-lettered and removed from ``records``.
        """
        attempt = outage = 0
        failure: Exception | None = None
        while records:
            started = time.perf_counter()
            try:
                # The handler runs in a CONSUMER span continuing the records' producer span (W3C headers).
                with trace.consuming(self._system, self._group, records):
                    await self._handler(list(records))
            except UnknownEventVersion as exc:
                self._observe(started, "error")
                if exc.record not in records:
                    attempt, failure = attempt + 1, exc  # the handler named a record it was not given: a bug
                else:
                    records.remove(exc.record)
                    await self._dead_letter(exc.record, "unknown_version", exc)
                    continue
            except self._options.transient as exc:
                self._observe(started, "error")
                self._log.warning("transient failure; retrying", error=repr(exc), records=len(records))
                outage = min(outage + 1, 30)  # keeps 2**outage small; backoff_max_s caps the wait anyway
                await asyncio.sleep(self._options.backoff_s(outage))
                continue
            except Exception as exc:
                self._observe(started, "error")
                attempt, failure = attempt + 1, exc
            else:
                self._observe(started, "ok")
                for topic, count in Counter(record.topic for record in records).items():
                    self._metrics.records.labels(topic, self._group, "handled").inc(count)
                return None
            if attempt >= self._options.max_attempts:
                return failure
            self._log.info("handler failed; retrying", error=repr(failure), attempt=attempt, records=len(records))
            await asyncio.sleep(self._options.backoff_s(attempt))
        return None

    def _observe(self, started: float, result: str) -> None:
        self._metrics.batch_duration.labels(self._group, result).observe(time.perf_counter() - started)

    async def _dead_letter(self, record: Record, reason: str, error: Exception) -> None:
        event = dead_letter_event(record, group=self._group, reason=reason, error=error)
        attempt = 0
        # Until the dead-letter topic has it, the record is not done: the watermark waits, nothing is lost.
        while True:
            try:
                await self._bus.publish_many([event])
                break
            except Exception as exc:
                attempt += 1
                self._log.warning("dead-letter publish failed; retrying", error=repr(exc), attempt=attempt)
                await asyncio.sleep(self._options.backoff_s(attempt))
        self._metrics.dead_letters.labels(record.topic, self._group, reason).inc()
        self._metrics.records.labels(record.topic, self._group, "dead_lettered").inc()
        self._log.error(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            error_type=type(error).__name__,
            error=str(error)[:200],
            dead_letter_topic=event.topic,
        )

    # -- committing -----------------------------------------------------------------------------------------------

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._options.commit_interval_s)
            await self._commit(self._progress.values())
            self._report_lag()

    async def _commit(self, progresses: Iterable[PartitionProgress]) -> None:
        async with self._commit_lock:
            due = [p for p in progresses if p.commit_point() not in (None, p.committed)]
            offsets = {p.tp: point for p in due if (point := p.commit_point()) is not None}
            if offsets:
                try:
                    await self.subscription.commit(offsets)
                except CommitFailed as exc:
                    # The partitions moved to another member; it starts from the last commit that landed.
                    self._log.info("commit refused after a rebalance", error=str(exc))
                    return
                except Exception as exc:
                    self._log.warning("commit failed; will retry", error=repr(exc))
                    return
                for progress in due:
                    progress.committed = offsets[progress.tp]
            self._caught_up_at = time.monotonic()

    def _report_lag(self) -> None:
        for progress in list(self._progress.values()):
            end = self.subscription.highwater(progress.tp)
            position = progress.committed if progress.committed is not None else progress.commit_point()
            if end is not None and position is not None:
                self._metrics.lag.labels(progress.tp.topic, str(progress.tp.partition), self._group).set(
                    max(0, end - position)
                )

    @property
    def subscription(self) -> Subscription:
        if self._subscription is None:
            raise BusError(f"{self.name} is not started")
        return self._subscription
