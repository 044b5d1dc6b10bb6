"""The scheduler of the task module: tasks on cron schedules, run once per scheduled time by one process of the fleet.

Every ``task`` process runs the same loop; on each tick it asks its ``Leadership`` whether it is the runner. Only the
runner runs the tasks that are due, each under its own deadline, so two processes never prune or reconcile at once.
A task is due when its schedule named a time (UTC) after its last recorded start: the ``RunLog`` keeps each task's
last run in the database, so a restart or a new runner neither runs a task twice for one scheduled time nor skips
one it missed (a missed time runs at once, once). A run that never finished within its timeout (its process died)
counts as failed and runs again. A task's failure is logged, recorded and counted, and the task is tried again at
its next scheduled time; it never stops the loop or the other tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from croniter import croniter
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from tidings.pkg.clock import Clock, SystemClock
from tidings.task.biz.runs import Run, RunLog
from tidings.task.service.jobs import Job

log = structlog.get_logger("tidings.task")


def last_scheduled_ms(schedule: str, now_ms: int) -> int:
    """The latest time at or before ``now_ms`` that the cron ``schedule`` names (UTC), in Unix milliseconds."""
    after_now = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(milliseconds=1)
    return int(croniter(schedule, after_now).get_prev(float) * 1000)


def next_scheduled_ms(schedule: str, now_ms: int) -> int:
    """The first time after ``now_ms`` that the cron ``schedule`` names (UTC), in Unix milliseconds."""
    return int(croniter(schedule, datetime.fromtimestamp(now_ms / 1000, UTC)).get_next(float) * 1000)


def period_s(schedule: str) -> float:
    """Seconds between two scheduled times (the first two after a fixed instant: schedules here are regular)."""
    times = croniter(schedule, datetime(2000, 1, 1, tzinfo=UTC))
    first = times.get_next(float)
    return float(times.get_next(float) - first)


@dataclass(frozen=True)
class TaskStatus:
    """A task as ``tidings task list`` shows it: its schedule, its last run, and when it runs next (``due``: at the
    runner's next tick)."""

    name: str
    schedule: str
    last: Run | None
    next_at_ms: int
    due: bool


class NotTheRunner(Exception):
    """Another task process holds the schedule: a task runs there, not here."""


class Leadership(Protocol):
    """Who of the task processes runs the jobs now."""

    async def hold(self) -> bool:
        """Whether this process is the runner, taking the role when it is free."""
        ...

    async def release(self) -> None: ...


class TaskMetrics:
    """Per task (label ``task``: a ``job`` label would clash with the scrape target's own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.runs = Counter(
            "tidings_task_runs",
            "Task runs, by task and outcome (ok, error, timeout).",
            ["task", "outcome"],
            registry=registry,
        )
        self.items = Counter(
            "tidings_task_items", "Items a task handled (rows pruned, ...), by task.", ["task"], registry=registry
        )
        self.duration = Histogram(
            "tidings_task_run_duration_seconds", "Time of one task run, by task.", ["task"], registry=registry
        )
        self.leader = Gauge("tidings_task_leader", "1 when this process runs the scheduled jobs.", registry=registry)
        self.last_success = Gauge(
            "tidings_task_last_success_timestamp_seconds",
            "When a task last ran without error.",
            ["task"],
            registry=registry,
        )
        self.period = Gauge(
            "tidings_task_period_seconds",
            "Seconds between two scheduled runs of a task (its alert fires after two periods without a success).",
            ["task"],
            registry=registry,
        )


class Scheduler:
    """Runs ``jobs`` at their scheduled times while ``leadership`` says this process is the runner."""

    def __init__(
        self,
        jobs: Sequence[Job],
        leadership: Leadership,
        runs: RunLog,
        metrics: TaskMetrics,
        *,
        tick_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._jobs = list(jobs)
        self._leadership = leadership
        self._runs = runs
        self._metrics = metrics
        self._tick_s = tick_s
        self._clock = clock or SystemClock()
        # The last runs, read when this process becomes the runner and kept up to date while it stays one.
        self._last: dict[str, Run] | None = None
        self._loop: asyncio.Task[None] | None = None
        for job in self._jobs:
            metrics.period.labels(job.name).set(period_s(job.schedule))

    @property
    def name(self) -> str:
        return "task-scheduler"

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        self._metrics.leader.set(0)
        await self._leadership.release()

    async def tick(self) -> list[str]:
        """One turn of the loop: the names of the jobs run (none when this process is not the runner)."""
        try:
            leader = await self._leadership.hold()
        except Exception as exc:  # the lock's store is down: not the runner until it answers again
            log.warning("task leadership unknown", error=str(exc))
            leader = False
        self._metrics.leader.set(1 if leader else 0)
        if not leader:
            self._last = None  # another runner may run jobs meanwhile: read their runs again on taking over
            return []
        if self._last is None:
            try:
                self._last = await self._runs.last_runs([job.name for job in self._jobs])
            except Exception as exc:  # not knowing what ran, run nothing rather than twice
                log.warning("task runs unknown", error=str(exc))
                return []
        ran: list[str] = []
        for job in self._jobs:
            if self._due(job, self._last.get(job.name)) and await self._run_job(job, self._last):
                ran.append(job.name)
        return ran

    async def status(self) -> list[TaskStatus]:
        """Every task's schedule, last run and next run, from the shared log."""
        last = await self._runs.last_runs([job.name for job in self._jobs])
        now = self._clock.now_ms()
        answer = []
        for job in self._jobs:
            due = self._due(job, last.get(job.name))
            answer.append(
                TaskStatus(
                    job.name,
                    job.schedule,
                    last.get(job.name),
                    now if due else next_scheduled_ms(job.schedule, now),
                    due,
                )
            )
        return answer

    @property
    def names(self) -> list[str]:
        return [job.name for job in self._jobs]

    async def preview(self, name: str) -> int:
        """How many items a run of ``name`` now would handle, changing nothing; ``KeyError`` for an unknown task."""
        job = self._job(name)
        if job.preview is None:
            raise ValueError(f"{name} cannot say what a run would do: it has no dry run")
        return await job.preview()

    def _job(self, name: str) -> Job:
        job = next((job for job in self._jobs if job.name == name), None)
        if job is None:
            raise KeyError(name)
        return job

    async def run_now(self, name: str) -> Run:
        """Run the task ``name`` once, now, as the runner (recorded like a scheduled run), then give the role back:
        for a process that does not run the loop (``tidings task run``). ``NotTheRunner`` while another process
        holds the schedule, ``KeyError`` for an unknown task."""
        job = self._job(name)
        if not await self._leadership.hold():
            raise NotTheRunner(name)
        try:
            last = await self._runs.last_runs([name])
            if not await self._run_job(job, last):
                raise NotTheRunner(name)  # the run could not be recorded: not run
            return last[name]
        finally:
            await self._leadership.release()

    def _due(self, job: Job, last: Run | None) -> bool:
        now = self._clock.now_ms()
        if last is None or last.started_at_ms < last_scheduled_ms(job.schedule, now):
            return True
        # Started for this scheduled time but never finished within its timeout: its process died during it.
        return last.finished_at_ms is None and now > last.started_at_ms + job.timeout_s * 1000

    async def _run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._tick_s)

    async def _run_job(self, job: Job, last: dict[str, Run]) -> bool:
        """Run ``job`` once, recording its start first; False if its start could not be recorded (not run)."""
        start = Run(job.name, self._clock.now_ms(), None, "running")
        try:
            await self._runs.record(start)
        except Exception as exc:  # unrecorded, a run could happen twice for one scheduled time: try next tick
            log.warning("task run not recorded; not run", job=job.name, error=str(exc))
            return False
        last[job.name] = start
        started = time.perf_counter()
        outcome, items, error = "ok", 0, ""
        try:
            async with asyncio.timeout(job.timeout_s):
                items = await job.run()
        except TimeoutError:
            outcome, error = "timeout", f"did not finish within {job.timeout_s:g} s"
            log.warning("task job timed out", job=job.name, timeout_s=job.timeout_s)
        except Exception as exc:  # a failed run is retried at the job's next scheduled time
            outcome, error = "error", repr(exc)
            log.error("task job failed", job=job.name, error=str(exc), exc_info=exc)
        else:
            self._metrics.items.labels(job.name).inc(items)
            self._metrics.last_success.labels(job.name).set_to_current_time()
            if items:
                log.info("task job ran", job=job.name, items=items)
        finally:
            self._metrics.runs.labels(job.name, outcome).inc()
            self._metrics.duration.labels(job.name).observe(time.perf_counter() - started)
        finished = Run(job.name, start.started_at_ms, self._clock.now_ms(), outcome, items, error)
        last[job.name] = finished
        try:
            await self._runs.record(finished)
        except Exception as exc:  # the start is recorded: the run counts for its scheduled time either way
            log.warning("task run outcome not recorded", job=job.name, error=str(exc))
        return True
